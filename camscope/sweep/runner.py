"""Run a sweep: check the results folder, skip finished tasks, run the rest on an engine, store, sum up.

Resuming is the normal case, not a special mode: the store knows which tasks are finished (their
Parquet file exists) and only the others are given to the engine. A folder that holds results of a
*different* config is refused, so two experiments are never mixed.
"""

from __future__ import annotations

import contextlib
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from camscope.sweep.config import SweepConfig
from camscope.sweep.engines import make_engine
from camscope.sweep.image_source import image_ids
from camscope.sweep.store import LOCK_FILE, RUN_FILE, ResultsStore, StoreError
from camscope.sweep.summary import Failure, failures, summary_text
from camscope.sweep.tasks import make_tasks


@dataclass
class SweepResult:
    """What a run did: tasks in total, already done before, computed now; failures; the summary text."""

    output: str
    total: int
    skipped: int
    computed: int
    seconds: float
    failures: list[Failure] = field(default_factory=list)
    summary: str = ""


def versions() -> dict[str, str]:
    import torch

    import camscope

    out = {"camscope": camscope.__version__, "torch": torch.__version__, "python": platform.python_version()}
    try:
        import timm

        out["timm"] = timm.__version__
    except ImportError:  # pragma: no cover - timm is a dependency
        out["timm"] = "missing"
    return out


def run_sweep(
    config: SweepConfig,
    *,
    engine: str = "local",
    resume: bool = False,
    fresh: bool = False,
    progress: bool = True,
    out: TextIO | None = None,
    **engine_options: Any,
) -> SweepResult:
    """Run (or continue, with ``resume``) ``config`` on ``engine``; ``fresh`` drops earlier results of it.

    ``engine_options`` go to the engine: ``threads`` (torch threads per task, both engines), and for Ray
    ``address``, ``num_cpus``, ``connect_timeout`` (see :mod:`camscope.sweep.engines.ray`).

    The results folder is locked for the whole run: a second sweep on it fails at once with
    :class:`~camscope.sweep.store.StoreLockedError` saying who holds it.
    """
    out = out or sys.stdout
    store = ResultsStore(config.output)
    new_folder = not store.root.exists()
    try:
        with store.lock() as lock:
            if lock.took_over:
                print(
                    f"taking over the lock of {config.output}: its holder (process {lock.took_over.get('pid')}) "
                    "is no longer running",
                    file=out,
                )
            return _run_locked(config, store, engine, resume, fresh, progress, out, engine_options)
    except BaseException:
        with contextlib.suppress(OSError):  # a sweep that never started leaves no folder behind
            if new_folder and [p.name for p in store.root.iterdir()] == [LOCK_FILE]:
                (store.root / LOCK_FILE).unlink()
                store.root.rmdir()
        raise


def _run_locked(
    config: SweepConfig,
    store: ResultsStore,
    engine: str,
    resume: bool,
    fresh: bool,
    progress: bool,
    out: TextIO,
    engine_options: dict[str, Any],
) -> SweepResult:
    config_hash = config.hash()
    tasks = make_tasks(config, len(image_ids(config.images)))
    done = _check_store(store, config, config_hash, resume, fresh, out)
    todo = [t for t in tasks if t.id not in done]
    runner = make_engine(engine, config, out=out, **engine_options)
    meta: dict[str, Any] = {
        "config": config.to_dict(),
        "config_hash": config_hash,
        "versions": versions(),
        "device": runner.device,
        "engine": engine,
        "tasks": len(tasks),
        "models": [m.name for m in config.models],
        "methods": list(config.methods),
        "metrics": list(config.metrics),
        "random_weights": [m.name for m in config.models if m.random_weights],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if store.exists:
        meta["runs"] = [*store.metadata().get("runs", []), meta["started"]]
    else:
        meta["runs"] = [meta["started"]]
    store.write_metadata(meta)
    parquet_meta = {"config_hash": config_hash, "device": runner.device, "engine": engine, **meta["versions"]}

    if done:
        print(f"resuming {config.output}: {len(done)} of {len(tasks)} tasks already done", file=out)
    if meta["random_weights"]:
        print(f"WARNING: RANDOM WEIGHTS for {', '.join(meta['random_weights'])}: their maps mean nothing", file=out)
    start = time.perf_counter()
    bars = _Progress(todo, enabled=progress)
    try:
        for output in runner.run(todo):
            store.write(output, parquet_meta)
            bars.advance(output.task.model, output.images)
    finally:
        bars.close()
        runner.close()
    seconds = time.perf_counter() - start
    table = store.read()
    result = SweepResult(config.output, len(tasks), len(done), len(todo), seconds, failures(table))
    result.summary = summary_text(table)
    images = sum(len(t.indices) for t in todo)
    rate = f", {images / seconds:.1f} image-tasks/s" if todo and seconds > 0 else ""
    print(f"\n{result.summary}\n", file=out)
    print(
        f"{len(todo)} task(s) computed in {seconds:.1f} s{rate}; {len(done)} were already done. "
        f"Results: {config.output}",
        file=out,
    )
    return result


def _check_store(
    store: ResultsStore, config: SweepConfig, config_hash: str, resume: bool, fresh: bool, out: TextIO
) -> set[str]:
    _heal_metadata(store, config_hash, out)
    if not store.exists:
        if store.parts.is_dir() and any(store.parts.glob("*.parquet")):
            pass  # run.json was unreadable and moved aside; its parts are of this config (checked above)
        elif store.root.exists() and any(p.name != LOCK_FILE for p in store.root.iterdir()):
            raise StoreError(f"{store.root} exists and is not a camscope results folder; choose another output")
        else:
            return set()
    else:
        old = store.metadata().get("config_hash")
        if old != config_hash:
            raise StoreError(
                f"{store.root} holds results of another sweep config (hash {old}, this one {config_hash}); "
                "choose another output folder or delete it"
            )
    store.clean_temporary()
    moved = store.heal()
    for original, aside in moved:
        print(f"unreadable {original.relative_to(store.root)}: moved aside to {aside.name}; its task reruns", file=out)
    if fresh:
        store.clear()
        return set()
    done = store.done()
    if done and not resume:
        raise StoreError(
            f"{store.root} already holds {len(done)} finished task(s) of this sweep: "
            "pass --resume to continue it, or choose another output folder"
        )
    return done


def _heal_metadata(store: ResultsStore, config_hash: str, out: TextIO) -> None:
    """An unreadable run.json is moved aside; the parts say which config they belong to (their Parquet metadata)."""
    if not store.exists:
        return
    try:
        store.metadata()
        return
    except StoreError as exc:
        reason = str(exc)
    hashes = store.part_hashes()
    others = {h for h in hashes if h != config_hash}
    if others:
        raise StoreError(f"{reason}, and its parts belong to another sweep config ({', '.join(sorted(others))})")
    aside = store.move_aside(store.root / RUN_FILE)
    print(f"{reason}: moved aside to {aside.name}; rewriting it from this config", file=out)


class _Progress:
    """One bar for the sweep and one per model, each with throughput (image-tasks/s) and ETA."""

    def __init__(self, todo: list[Any], enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.tqdm = tqdm
        self.enabled = enabled
        self.per_model: dict[str, int] = {}
        for t in todo:
            self.per_model[t.model] = self.per_model.get(t.model, 0) + len(t.indices)
        self.total = self.tqdm(
            total=sum(self.per_model.values()),
            desc="sweep",
            unit="img",
            disable=not enabled,
            position=0,
            dynamic_ncols=True,
        )
        self.bars: dict[str, Any] = {}

    def advance(self, model: str, images: int) -> None:
        if model not in self.bars:
            self.bars[model] = self.tqdm(
                total=self.per_model[model],
                desc=model,
                unit="img",
                leave=False,
                disable=not self.enabled,
                dynamic_ncols=True,
            )
        bar = self.bars[model]
        bar.update(images)
        self.total.update(images)
        if bar.n >= bar.total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.total.close()
