"""Run the meta-evaluation: every model × shard of generated scenes → one Parquet part of scored rows.

A task (one model, one shard of images) computes the maps of every method and the reference maps under
each condition — clean, each minor perturbation, the disrupted maps — then calls every metric *through
the registry* on all maps at once (inputs repeated per map, so its forwards batch across maps), counting
the model's forwards and the seconds per image and map: the cost a user pays for the metric. Each finished
task is written atomically (the sweep's :func:`~camscope.sweep.store.atomic_write`, the part being the
commit marker) under the sweep's folder lock, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from camscope.core.errors import CamscopeWarning, InputError, MetricInputError
from camscope.metaeval.config import MetaevalConfig
from camscope.metaeval.perturb import (
    FILLS,
    REFERENCES,
    noisy_inputs,
    noisy_model,
    object_filled,
    reference_maps,
    shuffle_cells,
)

CLEAN, DISRUPTED = "clean", "disrupted"
FLIPPED = "prediction flipped"
NO_GROUND_TRUTH = "no ground truth"
NO_METHOD = "a reference map: no method to re-explain"
RUN_FILE = "metaeval.json"

SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("image_index", pa.int64()),
        ("method", pa.string()),
        ("condition", pa.string()),  # clean, input, model (minor perturbations) or disrupted
        ("metric", pa.string()),  # the registered metric
        ("column", pa.string()),  # one of its declared output columns
        ("value", pa.float64()),  # NaN when status is not "ok"
        ("gt_energy", pa.float64()),  # the map's energy inside the true object: the known answer
        ("status", pa.string()),  # ok, skipped (the metric cannot run on this input) or failed
        ("flag", pa.string()),  # why a row must not be read as a plain number (a flipped prediction…)
        ("label", pa.int64()),
        ("predicted", pa.int64()),  # under this condition
        ("evidence_drop", pa.float64()),  # target probability on the scene minus on its object-free twin
        # ... minus with the object's pixels set to each constant fill (perturb.FILLS) of the metrics
        *[(f"fill_drop_{fill}", pa.float64()) for fill in FILLS],
        ("seconds", pa.float64()),  # the metric call's seconds per image and map
        ("forwards", pa.float64()),  # its model forwards per image and map
    ]
)


# one scored column: (column, values (maps·images), status, flag, seconds and forwards per image·map)
Scored = tuple[str, np.ndarray, list[str], list[str | None], float, float]


@dataclass
class Scenes:
    """One shard of generated scenes: uint8 images, their object-free twins, labels and masks."""

    indices: np.ndarray
    images: np.ndarray
    counterfactual: np.ndarray
    labels: np.ndarray
    masks: np.ndarray


def scenes(config: MetaevalConfig) -> Scenes:
    from camscope.data.synthetic import generate

    data = generate(config.images, config.seed, counterfactual=True)
    assert data.counterfactual is not None
    return Scenes(np.arange(len(data)), data.images, data.counterfactual, data.labels, data.masks)


def shard(data: Scenes, start: int, stop: int) -> Scenes:
    s = slice(start, stop)
    return Scenes(data.indices[s], data.images[s], data.counterfactual[s], data.labels[s], data.masks[s])


@contextmanager
def counting_forwards(model: nn.Module) -> Iterator[list[int]]:
    """Counts the rows (images) of every forward call of ``model`` in the block: ``counter[0]``."""
    counter = [0]

    def hook(_: nn.Module, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            counter[0] += int(args[0].shape[0])

    handle = model.register_forward_pre_hook(hook)
    try:
        yield counter
    finally:
        handle.remove()


# --------------------------------------------------------------------------- maps


def applicable_cams(model: nn.Module, spec: Any, methods: tuple[str, ...]) -> dict[str, Any]:
    """The constructed method objects that apply to ``model``: a method refusing the architecture at construction
    (attention methods on a CNN, LeGrad on class-attention blocks) is left out; any other failure is a warning."""
    from camscope.core.errors import LayerError
    from camscope.methods import get_method
    from camscope.methods.attention_capture import AttentionUnavailableError

    layers, reshape = spec.cam_layers(model)
    cams: dict[str, Any] = {}
    for name in methods:
        cls: Any = get_method(name)  # constructed as the sweep worker does: layers None where it picks its own
        params = {"progress": False} if "progress" in cls.params else {}
        try:
            cams[name] = cls(model, layers, reshape, **params) if cls.takes_layers else cls(model, None, None, **params)
        except (AttentionUnavailableError, LayerError):
            continue
        except Exception as exc:
            warnings.warn(CamscopeWarning(f"metaeval: {name} cannot run on this model ({exc})"), stacklevel=2)
    return cams


def method_maps(cams: dict[str, Any], x: torch.Tensor, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Maps (N, H, W) of each method explaining the true class, one shared pass per group of methods."""
    from camscope.methods.attention_capture import AttentionUnavailableError
    from camscope.methods.shared import compute_many

    names = list(cams)
    targets = [int(c) for c in labels]
    try:
        maps = compute_many([cams[n] for n in names], x, targets)
        return {n: m.detach().float().cpu().numpy() for n, m in zip(names, maps)}
    except Exception:
        out = {}
        for name in names:
            try:
                out[name] = cams[name](x, targets=targets)
            except AttentionUnavailableError:
                continue
            except Exception as exc:
                warnings.warn(CamscopeWarning(f"metaeval: {name} failed ({exc})"), stacklevel=2)
        return {n: np.asarray(m, dtype=np.float32) for n, m in out.items()}


# --------------------------------------------------------------------------- one task


@dataclass
class Condition:
    """What the metrics see in one condition: the model, the inputs, the maps, who flipped."""

    name: str
    model: nn.Module
    x: torch.Tensor
    maps: dict[str, np.ndarray]
    predicted: np.ndarray
    flipped: np.ndarray  # bool (N,)


class TaskRunner:
    """Scores one model's shards (keeps the model, its perturbed twin and its methods)."""

    def __init__(self, config: MetaevalConfig, name: str) -> None:
        from camscope.models import get_spec, load_model

        self.config = config
        self.name = name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CamscopeWarning)
            self.model = load_model(name).eval()
        self.spec = get_spec(name)
        self.methods = config.resolved_methods()
        self.metrics = config.resolved_metrics()
        self._twin: nn.Module | None = None

    def twin(self) -> nn.Module:
        if self._twin is None:
            self._twin = noisy_model(self.model, self.config.model_noise, self.config.seed)
        return self._twin

    def predictions(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        from camscope.metrics._common import forward_logits

        return torch.softmax(forward_logits(model, x, self.config.batch_size).float(), dim=-1)

    def condition(
        self, name: str, model: nn.Module, x: torch.Tensor, data: Scenes, clean: np.ndarray, same: bool = False
    ) -> Condition:
        """``same``: ``model`` and ``x`` are the clean ones, whose predictions ``clean`` already are."""
        cams = applicable_cams(model, self.spec, self.methods)
        maps = {**method_maps(cams, x, data.labels), **reference_maps(data.masks)}
        predicted = clean if same else self.predictions(model, x).argmax(-1).numpy()
        return Condition(name, model, x, maps, predicted, predicted != clean)

    def run(self, data: Scenes) -> list[dict[str, Any]]:
        from camscope.data.synthetic import to_input

        mean, std = tuple(self.spec.mean), tuple(self.spec.std)
        x = to_input(data.images, mean, std)
        probs = self.predictions(self.model, x)
        predicted = probs.argmax(-1).numpy()
        labels = torch.as_tensor(data.labels)
        rows_of = torch.arange(len(labels))
        p_true = probs[rows_of, labels].numpy()

        def drop_to(changed: torch.Tensor) -> np.ndarray:
            """The true class's probability on the scenes minus on ``changed`` scenes."""
            dropped: np.ndarray = p_true - self.predictions(self.model, changed)[rows_of, labels].numpy()
            return dropped

        evidence = drop_to(to_input(data.counterfactual, mean, std))
        fill_drops = {f"fill_drop_{fill}": drop_to(object_filled(x, data.masks, fill)) for fill in FILLS}

        clean = self.condition(CLEAN, self.model, x, data, predicted, same=True)
        conditions = [clean]
        if "input" in self.config.perturbations:
            noisy = noisy_inputs(x, self.config.input_noise, std, self.config.seed + int(data.indices[0]))
            conditions.append(self.condition("input", self.model, noisy, data, predicted))
        if "model" in self.config.perturbations:
            conditions.append(self.condition("model", self.twin(), x, data, predicted))
        seed = self.config.seed + int(data.indices[0])
        disrupted = {k: shuffle_cells(v, self.config.disrupt_cell, seed) for k, v in clean.maps.items()}
        conditions.append(Condition(DISRUPTED, self.model, x, disrupted, predicted, np.zeros(len(x), bool)))
        for c in conditions:
            if c.flipped.any():
                warnings.warn(
                    CamscopeWarning(
                        f"metaeval: the {c.name!r} perturbation flipped the prediction of {int(c.flipped.sum())} of "
                        f"{len(c.flipped)} image(s) on {self.name}; their rows are flagged {FLIPPED!r} and left "
                        "out of noise resilience"
                    ),
                    stacklevel=2,
                )

        rows: list[dict[str, Any]] = []
        for c in conditions:
            methods = [m for m in clean.maps if m in c.maps]  # a method that failed under a perturbation drops out
            gt = self._energy(c, methods, data.masks)
            base = {"model": self.name, "condition": c.name}
            for metric in self.metrics:
                for column, values, status, flag, seconds, forwards in self._score(metric, c, methods, data):
                    for k, method in enumerate(methods):
                        for i in range(len(data.indices)):
                            j = k * len(data.indices) + i
                            rows.append(
                                {
                                    **base,
                                    "image_index": int(data.indices[i]),
                                    "method": method,
                                    "metric": metric,
                                    "column": column,
                                    "value": float(values[j]),
                                    "gt_energy": float(gt[j]),
                                    "status": status[j],
                                    "flag": FLIPPED if c.flipped[i] else flag[j],
                                    "label": int(data.labels[i]),
                                    "predicted": int(c.predicted[i]),
                                    "evidence_drop": float(evidence[i]),
                                    **{k: float(v[i]) for k, v in fill_drops.items()},
                                    "seconds": seconds,
                                    "forwards": forwards,
                                }
                            )
        return rows

    @staticmethod
    def _energy(c: Condition, methods: list[str], masks: np.ndarray) -> np.ndarray:
        """Each map's energy inside the true object (NaN where the mask is empty: no known answer)."""
        from camscope.metrics.localization import relevance_mass

        maps = np.concatenate([c.maps[m] for m in methods])
        truth = np.concatenate([masks] * len(methods))
        has = truth.reshape(len(truth), -1).any(axis=1)
        energy = np.full(len(truth), np.nan)
        if has.any():
            energy[has] = relevance_mass(maps[has], truth[has]).scores
        return energy

    def _score(self, name: str, c: Condition, methods: list[str], data: Scenes) -> list[Scored]:
        """(column, values (maps·images), status, flag, seconds and forwards per image·map) per column."""
        from camscope.metrics import get_metric

        metric = get_metric(name)
        if not metric.takes("explain_func") or "explain_func" in self.config.metric_params.get(name, {}):
            return self._score_maps(metric, c, methods, data, {})
        # A re-explaining metric scores a method, not a map: each map is scored with the method that made it
        # (one explain_func for all would measure every map's distance to that one method's output).
        n = len(data.indices)
        parts = [
            [(col.name, np.full(n, np.nan), ["skipped"] * n, [NO_METHOD] * n, np.nan, np.nan) for col in metric.columns]
            if method in REFERENCES
            else self._score_maps(metric, c, [method], data, {"explain_func": self._explain_func(method)})
            for method in methods
        ]
        out: list[Scored] = []
        for k, column in enumerate(metric.columns):
            pieces = [part[k] for part in parts]
            seconds = [p[4] for p in pieces if np.isfinite(p[4])]
            forwards = [p[5] for p in pieces if np.isfinite(p[5])]
            out.append(
                (
                    column.name,
                    np.concatenate([p[1] for p in pieces]),
                    [status for p in pieces for status in p[2]],
                    [flag for p in pieces for flag in p[3]],
                    float(np.mean(seconds)) if seconds else np.nan,
                    float(np.mean(forwards)) if forwards else np.nan,
                )
            )
        return out

    def _explain_func(self, method: str) -> Any:
        """``method`` as a metric's ``explain_func``, built on whichever model the metric passes (a noisy or
        randomised copy), with the layers the maps were computed with."""
        from camscope.methods import get_method

        cls: Any = get_method(method)
        params = {"progress": False} if "progress" in cls.params else {}
        spec = self.spec

        def explain(model: nn.Module, inputs: torch.Tensor, targets: Any) -> torch.Tensor:
            layers, reshape = spec.cam_layers(model) if cls.takes_layers else (None, None)
            maps: torch.Tensor = cls(model, layers, reshape, **params).compute(inputs, [int(t) for t in targets])
            return maps.detach()

        return explain

    def _score_maps(
        self, metric: Any, c: Condition, methods: list[str], data: Scenes, extra: dict[str, Any]
    ) -> list[Scored]:
        """One call of ``metric`` on the maps of ``methods`` (``extra``: keyword arguments the runner supplies)."""
        name = metric.name
        n, m = len(data.indices), len(methods)
        has_truth = data.masks.reshape(n, -1).any(axis=1)
        keep = np.tile(has_truth, m) if metric.needs_ground_truth else np.ones(n * m, bool)
        status: list[str] = ["ok"] * (n * m)
        flag: list[str | None] = [None] * (n * m)
        if metric.needs_ground_truth and not has_truth.all():
            warnings.warn(
                CamscopeWarning(
                    f"metaeval: {name} needs ground truth, but {int((~has_truth).sum())} image(s) have an empty "
                    f"object mask; their rows are flagged {NO_GROUND_TRUTH!r}"
                ),
                stacklevel=2,
            )
            for j in np.flatnonzero(~keep):
                status[j], flag[j] = "skipped", NO_GROUND_TRUTH
        maps = np.concatenate([c.maps[k] for k in methods])[keep]
        x = c.x.repeat(m, 1, 1, 1)[torch.as_tensor(keep)]
        targets = [int(t) for t in np.tile(data.labels, m)[keep]]
        truth = np.concatenate([data.masks] * m)[keep] if metric.needs_ground_truth else None
        kwargs = {
            **metric.accepted(batch_size=self.config.batch_size, mean=self.spec.mean, std=self.spec.std),
            **extra,
            **self.config.metric_params.get(name, {}),
        }
        start = time.perf_counter()
        try:
            with counting_forwards(c.model) as count:
                result = metric(c.model, x, maps, targets, ground_truth=truth, **kwargs) if len(maps) else None
            seconds, forwards = (time.perf_counter() - start) / max(1, len(maps)), count[0] / max(1, len(maps))
            summary = result.summary() if result is not None else {}
        except Exception as exc:
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            warnings.warn(CamscopeWarning(f"metaeval: {name} could not run on {self.name} ({reason})"), stacklevel=2)
            nan = np.full(n * m, np.nan)
            # refused input (ground truth it cannot have, a parameter it lacks): skipped; anything else: failed
            bad = "skipped" if isinstance(exc, (MetricInputError, InputError, TypeError)) else "failed"
            return [(col.name, nan, [bad] * (n * m), [reason] * (n * m), np.nan, np.nan) for col in metric.columns]
        out: list[Scored] = []
        for column in metric.columns:
            values = np.full(n * m, np.nan)
            if column.name in summary:
                values[keep] = np.asarray(summary[column.name], dtype=np.float64)
                out.append((column.name, values, status, flag, seconds, forwards))
            else:  # a declared column this call did not produce (e.g. one ROAD order only)
                missing = "the metric returned no value for this column"
                out.append((column.name, values, ["skipped"] * (n * m), [missing] * (n * m), seconds, forwards))
        return out


# --------------------------------------------------------------------------- the run


def _part_path(out: Path, model: str, shard_index: int) -> Path:
    return out / "parts" / f"{model}__{shard_index:04d}.parquet"


def run_metaeval(
    config: MetaevalConfig, out: str | Path, *, fresh: bool = False, progress: bool = True, jobs: int = 1
) -> Path:
    """Compute every missing (model, shard) part of ``config`` under ``out``; returns ``out``.

    A folder written with other settings is an error (``fresh=True`` clears its parts first); the parts of
    the same settings are kept, so an interrupted run continues where it stopped. ``jobs`` > 1 computes that
    many parts at once, each in its own process on one torch thread (a part's numbers do not depend on
    ``jobs``); their warnings are repeated here.
    """
    from tqdm.auto import tqdm

    from camscope.sweep.store import StoreLock, atomic_write

    if jobs < 1:
        raise InputError(f"jobs must be >= 1, got {jobs}")
    out = Path(out)
    meta_path = out / RUN_FILE
    settings = config.as_dict()
    with StoreLock(out):
        if meta_path.is_file():
            stored = json.loads(meta_path.read_text())
            if stored.get("hash") != config.hash() and not fresh:
                raise InputError(
                    f"{out} holds a meta-evaluation with other settings (hash {stored.get('hash')}, now "
                    f"{config.hash()}): use --fresh to replace it, or another --out"
                )
        if fresh:
            for part in (out / "parts").glob("*.parquet") if (out / "parts").is_dir() else []:
                part.unlink()
        starts = list(range(0, config.images, config.shard_size))
        todo = [
            (model, k, start)
            for model in config.models
            for k, start in enumerate(starts)
            if not _part_path(out, model, k).is_file()
        ]
        workers = min(jobs, len(todo))  # what this run uses: one part left runs here, on torch's threads
        threads = 1 if workers > 1 else torch.get_num_threads()
        meta = {"hash": config.hash(), "settings": settings, "torch_threads": threads, "jobs": max(workers, 1)}
        atomic_write(meta_path, lambda p: p.write_text(json.dumps(meta, indent=2)))
        bar = tqdm(total=len(todo), desc="metaeval", unit="task", disable=None if progress else True)
        with bar:
            if workers < 2:
                runners: dict[tuple[str, str], TaskRunner] = {}
                for model, k, start in todo:
                    bar.set_postfix_str(f"{model} images {start}-{min(start + config.shard_size, config.images) - 1}")
                    compute_part(config, out, model, k, start, runners)
                    bar.update()
            else:
                _in_processes(config, out, todo, workers, bar)
    return out


def _in_processes(config: MetaevalConfig, out: Path, todo: list[tuple[str, int, int]], jobs: int, bar: Any) -> None:
    """The parts of ``todo`` computed by ``jobs`` spawned processes (model-major order, so a process mostly
    keeps its model); each worker's warnings are issued again here, once the part is written. A part needing
    a name registered in this process only (a model, method or metric a script registered) is computed here
    afterwards: a spawned process knows only what importing camscope registers."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch's threads and the lock
    here: list[tuple[str, int, int]] = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_one_thread) as pool:
        running = {pool.submit(_part_in_worker, config, out, *task): task for task in todo}
        try:
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    caught = future.result()
                    if caught is None:
                        here.append(task)
                        continue
                    for category, message in caught:
                        warnings.warn(category(message), stacklevel=2)
                    bar.update()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # the finished parts stay: a rerun resumes
            raise
    runners: dict[tuple[str, str], TaskRunner] = {}
    for model, k, start in sorted(here):
        compute_part(config, out, model, k, start, runners)
        bar.update()


def _one_thread() -> None:
    torch.set_num_threads(1)


# a worker process's runner per (settings, model), kept between the parts it is given
_WORKER_RUNNERS: dict[tuple[str, str], TaskRunner] = {}


def _part_in_worker(
    config: MetaevalConfig, out: Path, model: str, k: int, start: int
) -> list[tuple[type[Warning], str]] | None:
    """:func:`compute_part` in a worker process; returns its warnings as (category, message), or None where
    a name of the config is not registered in this fresh process (the parent computes that part)."""
    from camscope.core.errors import UnknownNameError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            compute_part(config, out, model, k, start, _WORKER_RUNNERS)
        except UnknownNameError:
            return None
    return [(w.category, str(w.message)) for w in caught if issubclass(w.category, CamscopeWarning)]


def compute_part(
    config: MetaevalConfig,
    out: Path,
    model: str,
    k: int,
    start: int,
    runners: dict[tuple[str, str], TaskRunner],
) -> None:
    """Score shard ``k`` (the scenes from ``start``) of ``model`` and write its part atomically. ``runners``
    keeps the runner of (settings, model) for the model's next shard, one model at a time."""
    from camscope.sweep.store import atomic_write

    key = (config.hash(), model)
    if key not in runners:
        runners.clear()  # one model in memory at a time
        runners[key] = TaskRunner(config, model)
    data = shard(_scenes_of(config), start, start + config.shard_size)
    begin, cpu, started = time.perf_counter(), time.process_time(), time.time()
    rows = runners[key].run(data)
    # wall and CPU seconds, and when: on a shared machine the wall time says more about the neighbours, and
    # parts computed side by side overlap (the run's wall time is the union of their intervals)
    stamps = {
        "seconds": time.perf_counter() - begin,
        "cpu_seconds": time.process_time() - cpu,
        "started": started,
        "finished": time.time(),
    }
    table = pa.Table.from_pylist(rows, schema=SCHEMA).replace_schema_metadata(
        {b"hash": config.hash().encode(), **{k.encode(): f"{v:.3f}".encode() for k, v in stamps.items()}}
    )
    atomic_write(_part_path(out, model, k), lambda p, t=table: pq.write_table(t, p, compression="zstd"))


_SCENES: dict[str, Scenes] = {}


def _scenes_of(config: MetaevalConfig) -> Scenes:
    """:func:`scenes`, generated once per process and settings."""
    key = config.hash()
    if key not in _SCENES:
        _SCENES.clear()
        _SCENES[key] = scenes(config)
    return _SCENES[key]


def read_rows(out: str | Path) -> tuple[pa.Table, dict[str, Any], float]:
    """(every stored row, the run's metadata, the wall seconds its parts took) of a metaeval folder; the
    metadata's ``cpu_seconds`` sums the CPU time of the parts that recorded it (None if none did)."""
    out = Path(out)
    meta_path = out / RUN_FILE
    if not meta_path.is_file():
        raise InputError(f"{out} is not a meta-evaluation folder (no {RUN_FILE}); run `camscope metaeval` first")
    meta = json.loads(meta_path.read_text())
    parts = sorted((out / "parts").glob("*.parquet"))
    if not parts:
        raise InputError(f"{out} holds no finished part yet")
    tables, seconds, cpu, spans = [], 0.0, [], []
    for part in parts:
        table = pq.read_table(part)
        stored = table.schema.metadata or {}
        if stored.get(b"hash", b"").decode() != meta["hash"]:
            continue  # a part from other settings (left by an interrupted --fresh): not this run's
        seconds += float(stored.get(b"seconds", b"0"))
        if b"cpu_seconds" in stored:
            cpu.append(float(stored[b"cpu_seconds"]))
        if b"started" in stored and b"finished" in stored:
            spans.append((float(stored[b"started"]), float(stored[b"finished"])))
        tables.append(table.replace_schema_metadata(None))
    if not tables:
        raise InputError(f"{out} holds no part of its own settings")
    meta["cpu_seconds"] = sum(cpu) if cpu and len(cpu) == len(tables) else None
    return pa.concat_tables(tables), meta, covered(spans) if len(spans) == len(tables) else seconds


def covered(spans: list[tuple[float, float]]) -> float:
    """The seconds the union of the ``(start, end)`` intervals covers: parts computed side by side count once."""
    total, reach = 0.0, float("-inf")
    for begin, end in sorted(spans):
        if end > reach:
            total += end - max(begin, reach)
            reach = end
    return total
