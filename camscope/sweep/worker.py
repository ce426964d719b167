"""The task function: one (model, method, shard) → rows of results and the shard's maps.

Both engines call :meth:`TaskWorker.run` — in-process (local) or inside a Ray actor — so a result
never depends on where it was computed. A worker keeps the last model and the last shard's inputs
(clean logits, targets, ground truth) alive: tasks arrive model → shard → method, so each model is
loaded once and each shard decoded and preprocessed once per model.

Methods that read the same layer (the gradient CAMs, Eigen-CAM…) share one forward+backward pass:
the first task of a shard computes the maps of every pending method of its pass group
(:func:`camscope.methods.shared.compute_many`) and keeps the others' for their own tasks, which
follow it. Engines tell the worker which tasks are pending (:meth:`TaskWorker.plan`), so a resumed
sweep computes no map it already has.
"""

from __future__ import annotations

import time
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from camscope.core.devices import resolve_device
from camscope.core.errors import CamscopeWarning, TargetError
from camscope.core.outputs import Detections, Outputs, read_scores
from camscope.pipeline import build_cams, class_targets, per_image, recorded_texts, request_targets, run_methods
from camscope.sweep.config import ModelEntry, SweepConfig
from camscope.sweep.image_source import ImageReader, image_ids
from camscope.sweep.schema import SCHEMA, TaskOutput
from camscope.sweep.tasks import Task

if TYPE_CHECKING:
    from camscope.metrics import ForwardMemo

HEAD_MAP_SIDE = 64  # longest side of the stored per-head attention maps


@dataclass
class PreparedModel:
    """A loaded model with everything a task needs to explain and score it."""

    entry: ModelEntry
    model: nn.Module
    spec: Any
    layers: list[nn.Module]
    reshape: Any
    kind: str
    device: torch.device


@dataclass
class PreparedShard:
    """One shard's inputs for one model: tensors of the readable images, their targets and ground truth."""

    key: tuple[str, int]
    ok: list[int]  # positions (in the task's indices) of the images that loaded
    failures: dict[int, str]
    x: torch.Tensor | None
    labels: list[int | None]
    targets: list[Any]  # class indices, or SimilarityTargets (the own embedding) in a label-free sweep
    predicted: list[int | None]
    probs: list[float | None]
    masks: list[np.ndarray | None]
    views: dict[int, np.ndarray]
    warnings: dict[int, list[str]] = field(default_factory=dict)  # by task position: loader warnings
    #: maps computed for a later task of this shard (shared pass): method -> (maps, CAM seconds per image,
    #: the method's warnings, image positions shard-relative)
    maps: dict[str, tuple[np.ndarray, float, list[CamscopeWarning]]] = field(default_factory=dict)
    served: set[str] = field(default_factory=set)  # methods whose maps were computed for this shard
    #: token models: uint8 (views, heads, h, w), each head's CLS→patch attention of the last block for the
    #: report's per-head grid (None: the model has no class-token attention, or no views are kept)
    head_maps: np.ndarray | None = None
    #: the model's outputs on whole images of this shard (clean, substrates), shared by every method's metrics
    forwards: ForwardMemo | None = None


def load_prepared(entry: ModelEntry, device: torch.device, head: bool = True) -> PreparedModel:
    """Load a sweep model with its weights (or random ones, on request) and its CAM layers; ``head=False``:
    its backbone (label-free sweeps)."""
    from camscope.models import get_spec, load_model

    spec = get_spec(entry.name) if head else get_spec(entry.name).backbone()
    if entry.input_size:
        s = entry.input_size
        spec = replace(spec, preprocess=replace(spec.preprocess, resize=s, crop=(s, s)))
    # Random weights are seeded from the model name: every worker, engine and resumed run of a sweep
    # must explain the *same* random model, or a resumed wiring test would mix two models.
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")  # random weights are marked in every row and in the report
        torch.manual_seed(zlib.crc32(entry.name.encode()))
        model = load_model(entry.name, weights=entry.weights, random_weights=entry.random_weights, head=head)
    model = model.to(device).eval()
    layers, reshape = spec.cam_layers(model)
    # Token models need a reshape transform (ViT, Swin, XCiT...); convolutional maps are NCHW already.
    kind = "cnn" if reshape is None else "transformer"
    if kind == "cnn" and device.type == "cpu":
        # oneDNN's convolutions run 1.5-1.8x faster channels-last on CPU (measured on the mini ResNets);
        # the results differ by float rounding only. Inputs stay NCHW: the first convolution converts.
        model = model.to(memory_format=torch.channels_last)
    return PreparedModel(entry, model, spec, layers, reshape, kind, device)


class TaskWorker:
    """Runs tasks of one sweep; caches the current model and the current shard."""

    def __init__(self, config: SweepConfig, device: str | None = None) -> None:
        self.config = config
        self.device = resolve_device(device or config.device)
        self.ids = image_ids(config.images)
        self.reader = ImageReader(config.images)
        self._model: PreparedModel | None = None
        self._shard: PreparedShard | None = None
        self._pending: set[str] | None = None  # ids of the tasks still to run (None: every task)

    def plan(self, tasks: Sequence[Task]) -> None:
        """The tasks this worker will run: a shared pass computes maps only for methods still pending."""
        self._pending = {task.id for task in tasks}

    # ------------------------------------------------------------------ public
    def run(self, task: Task) -> TaskOutput:
        """Compute one task. Failures of single images, or of the whole task, become failed rows."""
        start = time.perf_counter()
        try:
            prepared = self._prepare_model(task.model)
            shard = self._prepare_shard(prepared, task)
            rows, maps = self._compute(prepared, shard, task)
        except Exception as exc:  # one broken task must not end a long sweep
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            rows = [self._failed_row(task, pos, reason, None) for pos in range(len(task.indices))]
            maps = {}
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        failed = len({r["image_index"] for r in rows if r["status"] == "failed"})
        return TaskOutput(task, table, maps, time.perf_counter() - start, failed)

    def release(self) -> None:
        """Drop the cached model and shard (an engine calls this between models)."""
        self._model = self._shard = None

    # ------------------------------------------------------------------ caches
    def _prepare_model(self, name: str) -> PreparedModel:
        if self._model is None or self._model.entry.name != name:
            self.release()
            self._model = load_prepared(self.config.model(name), self.device, head=not self.config.label_free)
        return self._model

    def _prepare_shard(self, pm: PreparedModel, task: Task) -> PreparedShard:
        key = (task.model, task.shard)
        if self._shard is not None and self._shard.key == key:
            return self._shard
        from camscope.api import denormalize
        from camscope.metrics import ForwardMemo, transform_mask

        ok, failures, tensors, labels, masks = [], {}, [], [], []
        pre = pm.spec.preprocess
        loader_warnings: dict[int, list[str]] = {}
        for pos, index in enumerate(task.indices):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CamscopeWarning)
                image = self.reader.read(index)
            texts = recorded_texts(caught)
            if texts:
                loader_warnings[pos] = texts
            if isinstance(image, str):
                failures[pos] = image
                continue
            ok.append(pos)
            tensors.append(pre(image.picture))
            labels.append(image.label)
            mask = None if image.mask is None else transform_mask(image.mask, pre.resize, pre.crop)
            masks.append(mask if mask is not None and mask.any() else None)
        x = torch.stack(tensors).to(pm.device) if tensors else None
        targets: list[Any] = []
        predicted: list[int | None] = []
        probs: list[float | None] = []
        forwards = ForwardMemo(pm.model)  # the clean forward, kept for every method's metrics
        if x is not None:
            logits = _scores(task.model, forwards.outputs(x, self.config.batch_size), self.config.label_free)
            if self.config.label_free:  # the output is an embedding: no classes to predict
                targets = list(request_targets(pm.model, x, "embedding", embed=lambda _: logits))
                predicted, probs = [None] * len(ok), [None] * len(ok)
            else:
                p = torch.softmax(logits.float(), dim=-1)
                top1: list[int] = p.argmax(dim=-1).tolist()
                predicted = list[int | None](top1)
                targets = class_targets(top1, labels, use_label=self.config.targets == "label")
                probs = [float(p[i, t]) for i, t in enumerate(targets)]
        views = {
            j: denormalize(x[j].cpu(), pm.spec.mean, pm.spec.std)
            for j, pos in enumerate(ok)
            if x is not None and task.indices[pos] < self.config.report_images
        }
        self._shard = PreparedShard(
            key, ok, failures, x, labels, targets, predicted, probs, masks, views, loader_warnings
        )
        self._shard.forwards = forwards
        if views and x is not None:
            self._shard.head_maps = head_maps(pm.model, x[list(views)])
        return self._shard

    # ------------------------------------------------------------------ the work
    def _compute(
        self, pm: PreparedModel, shard: PreparedShard, task: Task
    ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
        rows = [self._failed_row(task, pos, reason, pm) for pos, reason in shard.failures.items()]
        if shard.x is None:
            return rows, {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CamscopeWarning)
            maps, cam_seconds = self._maps(pm, task, shard)
        flags = per_image([record.message for record in caught], len(shard.ok))
        for j, shard_pos in enumerate(shard.ok):
            flags[j] = shard.warnings.get(shard_pos, []) + flags[j]
        base = [
            {
                **self._identity(task, shard_pos, pm),
                "label": shard.labels[j],
                "target": shard.targets[j] if isinstance(shard.targets[j], int) else None,
                "predicted": shard.predicted[j],
                "target_prob": shard.probs[j],
                "status": "ok",
                "error": None,
                "cam_seconds": cam_seconds,
                "warnings": "; ".join(flags[j]) or None,
            }
            for j, shard_pos in enumerate(shard.ok)
        ]
        from camscope.metrics import shared_forwards

        with shared_forwards(pm.model, shard.forwards):  # clean and substrate forwards: once per shard
            for name, params in self.config.metrics.items():
                scored = self._metric_rows(pm, shard, maps, name, params, task.method)
                for j, metric, value, curve_x, curve in scored:
                    rows.append({**base[j], "metric": metric, "value": value, "curve_x": curve_x, "curve": curve})
        if not self.config.metrics:
            rows.extend({**b, "metric": None, "value": None} for b in base)
        ids = [self.ids[task.indices[pos]] for pos in shard.ok]
        out = {"ids": np.array(ids), "maps": np.rint(np.clip(maps, 0, 1) * 255).astype(np.uint8)}
        if shard.views:
            out["view_ids"] = np.array([ids[j] for j in shard.views])
            out["views"] = np.stack(list(shard.views.values()))
            if shard.head_maps is not None:
                out["head_maps"] = shard.head_maps
        return rows, out

    def _maps(self, pm: PreparedModel, task: Task, shard: PreparedShard) -> tuple[np.ndarray, float]:
        """The task's maps and their CAM seconds per image, computed together with the pending methods that
        share its pass (their maps are kept for their own tasks)."""

        if task.method not in shard.maps:
            self._compute_group(pm, task, shard)
        maps, seconds, flagged = shard.maps.pop(task.method)
        for message in flagged:  # shown in this task, whichever task computed the pass
            warnings.warn(message, stacklevel=2)
        return maps, seconds

    def _compute_group(self, pm: PreparedModel, task: Task, shard: PreparedShard) -> None:
        from camscope.methods.shared import pass_groups

        cams = {task.method: self._cam(pm, task.method)}
        for method in self.config.methods:
            if method not in cams and method not in shard.served and self._is_pending(task, method):
                try:
                    cams[method] = self._cam(pm, method)
                except Exception:  # its own task reports the error
                    continue
        methods = list(cams)
        group = next(g for g in pass_groups(list(cams.values())) if 0 in g)
        try:
            self._compute_maps(shard, [methods[i] for i in group], [cams[methods[i]] for i in group])
        except Exception:
            if len(group) == 1:
                raise
            # a sibling's failure must not fail this task: compute it alone (its own error, if any, is raised)
            self._compute_maps(shard, [task.method], [cams[task.method]])

    def _compute_maps(self, shard: PreparedShard, methods: list[str], cams: list[Any]) -> None:
        """Maps of ``cams`` (one shared pass per batch) into ``shard.maps``, with each one's CAM seconds per
        image (its own work plus an equal share of the pass)."""
        assert shard.x is not None
        computed = run_methods(
            cams, shard.x, shard.targets, batch_size=self.config.batch_size, label_free=self.config.label_free
        )
        for method, result in zip(methods, computed):
            flagged = [m for m in result.messages if isinstance(m, CamscopeWarning)]
            shard.maps[method] = (result.maps, result.seconds / len(shard.ok), flagged)
            shard.served.add(method)

    def _is_pending(self, task: Task, method: str) -> bool:
        sibling = replace(task, method=method)
        return self._pending is None or sibling.id in self._pending

    def _cam(self, pm: PreparedModel, method: str) -> Any:
        from camscope.methods import get_method

        cls = get_method(method)
        params = dict(self.config.methods.get(method, {}))
        if "progress" in cls.params:
            params["progress"] = False
        return build_cams(pm.model, [cls], pm.layers, pm.reshape, {cls: params})[0]

    def _metric_rows(
        self,
        pm: PreparedModel,
        shard: PreparedShard,
        maps: np.ndarray,
        name: str,
        params: dict[str, Any],
        method: str,
    ) -> list[tuple[int, str, float, list[float] | None, list[float] | None]]:
        """(image position in shard.ok, metric column, value, curve x, curve) for one configured metric;
        a metric that re-explains (robustness) re-explains with the task's own method unless configured."""
        from camscope.metrics import get_metric

        metric = get_metric(name)
        assert shard.x is not None
        kwargs = {**metric.accepted(batch_size=self.config.metric_batch_size), **params}
        if metric.takes("explain_func") and "explain_func" not in kwargs:  # re-explains with the task's method
            kwargs.update(metric.accepted(explain_func=method, explain_func_kwargs=self._reexplain(pm, method)))
        kwargs.update(metric.accepted(mean=pm.spec.mean, std=pm.spec.std))
        if metric.needs_ground_truth:
            keep = [j for j, m in enumerate(shard.masks) if m is not None]
            if not keep:
                return []
            gt = np.stack([m for m in (shard.masks[j] for j in keep) if m is not None])
            result = metric(
                pm.model, shard.x[keep], maps[keep], [shard.targets[j] for j in keep], ground_truth=gt, **kwargs
            )
        else:
            keep = list(range(len(shard.ok)))
            result = metric(pm.model, shard.x, maps, shard.targets, **kwargs)
        curves = metric.curves(result, shard.x.shape[2] * shard.x.shape[3])
        out = []
        for column, values in result.summary().items():
            curve_x, curve_y = curves.get(column, (None, None))
            for k, j in enumerate(keep):
                out.append(
                    (
                        j,
                        column,
                        float(values[k]),
                        None if curve_x is None else curve_x,
                        None if curve_y is None else [float(v) for v in curve_y[k]],
                    )
                )
        return out

    def _reexplain(self, pm: PreparedModel, method: str) -> dict[str, Any]:
        """How a randomisation metric re-explains: the task's method with its parameters, on its layers."""
        from camscope.core.layer_paths import module_path
        from camscope.methods import get_method

        params = {k: v for k, v in self.config.methods.get(method, {}).items() if k != "progress"}
        if get_method(method).takes_layers:
            params["layers"] = [module_path(pm.model, layer) for layer in pm.layers]
        return params

    # ------------------------------------------------------------------ rows
    def _identity(self, task: Task, pos: int, pm: PreparedModel | None) -> dict[str, Any]:
        return _identity(self.config, self.ids, task, pos, pm)

    def _failed_row(self, task: Task, pos: int, reason: str, pm: PreparedModel | None) -> dict[str, Any]:
        return {**self._identity(task, pos, pm), "status": "failed", "error": reason}


def _identity(config: SweepConfig, ids: list[str], task: Task, pos: int, pm: PreparedModel | None) -> dict[str, Any]:
    index = task.indices[pos]
    spec = pm.spec if pm is not None else None
    return {
        "task": task.id,
        "image_id": ids[index],
        "image_index": index,
        "model": task.model,
        "family": getattr(spec, "family", None),
        "training": getattr(spec, "training", None),
        "ssl_method": getattr(spec, "ssl_method", None),
        "kind": pm.kind if pm is not None else None,
        "random_weights": config.model(task.model).random_weights,
        "method": task.method,
    }


def failed_output(config: SweepConfig, ids: list[str], task: Task, reason: str) -> TaskOutput:
    """``task`` recorded as failed for every image, with ``reason``: what an engine stores for a task it
    could not get computed (its worker lost too often), so the sweep finishes and says which."""
    rows = [
        {**_identity(config, ids, task, pos, None), "status": "failed", "error": reason}
        for pos in range(len(task.indices))
    ]
    return TaskOutput(task, pa.Table.from_pylist(rows, schema=SCHEMA), {}, 0.0, len(task.indices))


def head_maps(model: nn.Module, x: torch.Tensor, side: int = HEAD_MAP_SIDE) -> np.ndarray | None:
    """Every head's CLS→patch attention of the last block (:meth:`AttentionMap.all_heads`) as uint8
    (N, heads, h, w), area-downscaled to at most ``side`` px (the report draws small panels); None for a
    model without class-token attention (CNN, Swin), which the report then leaves out."""
    from camscope.methods.attention import AttentionMap
    from camscope.methods.attention_capture import AttentionUnavailableError

    try:
        maps = torch.from_numpy(AttentionMap(model).all_heads(x))
    except AttentionUnavailableError:
        return None
    height, width = maps.shape[-2:]
    scale = min(1.0, side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        maps = torch.nn.functional.interpolate(maps, size=size, mode="area")
    quantised: np.ndarray = np.rint(maps.clamp(0, 1).numpy() * 255).astype(np.uint8)
    return quantised


def _scores(model: str, outputs: Outputs, label_free: bool) -> torch.Tensor:
    """The clean outputs as class scores (or embeddings, label-free); a detector or a segmentation model is
    refused in one line, which a sweep's rows (one class per image) cannot describe."""
    dense = isinstance(outputs, torch.Tensor) and outputs.ndim == 4 and not label_free
    if isinstance(outputs, Detections) or dense:
        kind = "dense (classes, H, W) maps" if dense else "detections"
        raise TargetError(
            f"{model} outputs {kind}: a sweep explains classifiers (and embeddings, label-free); "
            "explain and score it with camscope explain / camscope evaluate"
        )
    return read_scores(outputs)
