"""The one-call API: ``camscope.explain(model, image, method=...)``.

It joins the pieces a user would otherwise wire by hand — the model's own preprocessing, its default
target layers and reshape transform (from the zoo spec, or inferred for any timm/torchvision model),
the method, and the top classes — and returns the map together with the image exactly as the model
saw it (after resize and crop), so overlays line up.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from camscope.core.errors import InputError
from camscope.core.outputs import Detections, class_summary, read_output
from camscope.core.targets import (
    CLASS_PROBABILITY,
    BoxScoreTarget,
    Target,
    TargetSpec,
    class_index,
    confident_detections,
    is_single_target,
    region_target,
    score_name,
)
from camscope.methods.base import BaseCAM
from camscope.pipeline import (
    ImageInput,
    MethodMaps,
    build_cams,
    cam_layers,
    locked,
    method_classes,
    method_params,
    model_and_batch,
    request_targets,
    run_methods,
)

VIEWS = ("original", "input")  # what an overlay is drawn on: the user's image, or the model's input


@dataclass
class Explanation:
    """One image's explanation: the map, the model's view of the image, and what the model predicted."""

    map: np.ndarray  # float32 (H, W) in [0, 1]
    image: np.ndarray  # uint8 (H, W, 3): the model's input, de-normalised
    target: int | None  # the explained class (None for a custom target callable)
    top_classes: list[tuple[int, str, float]]  # (index, name, probability), best first
    method: str
    layers: list[str]
    model_name: str = ""
    random_weights: bool = False
    extras: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # CamscopeWarnings about this image's map
    original: np.ndarray | None = None  # uint8 (H0, W0, 3): the image as given (at most pipeline.MAX_OVERLAY_PIXELS)
    geometry: tuple[Any, Any] | None = None  # (resize, crop) of the model's preprocessing
    scored: Target | None = None  # a segmentation / box target: what evaluate() scores (its region, its boxes)

    def original_map(self) -> tuple[np.ndarray, np.ndarray]:
        """The map laid back onto the original image: ``(map (H0, W0), inside (H0, W0) bool)``.

        ``inside`` is False on the border the model's centre crop cut away (the map is 0 there).
        """
        from camscope.data.geometry import map_to_original

        if self.original is None or self.geometry is None:
            raise InputError("this explanation does not carry its original image")
        height, width = self.original.shape[:2]
        return map_to_original(self.map, height, width, *self.geometry)

    def overlay(self, alpha: float = 0.5, colormap: str = "jet", view: str = "original") -> np.ndarray:
        """The map over the image: ``view="original"`` (the user's image at its own resolution, the
        cropped-away border dimmed and outlined) or ``"input"`` (the model's input, e.g. 224×224)."""
        from camscope.viz import mark_outside, overlay

        if view not in VIEWS:
            raise InputError(f"unknown view {view!r}; use one of {', '.join(VIEWS)}")
        if view == "input" or self.original is None:
            return self._with_boxes(overlay(self.image, self.map, alpha=alpha, colormap=colormap), "input")
        mapped, inside = self.original_map()
        return self._with_boxes(mark_outside(overlay(self.original, mapped, alpha=alpha, colormap=colormap), inside))

    def _with_boxes(self, picture: np.ndarray, view: str = "original") -> np.ndarray:
        """``picture`` with the outlines of the detections a detector's map explains (none for other targets)."""
        from camscope.data.geometry import boxes_to_original
        from camscope.viz import draw_boxes

        if not isinstance(self.scored, BoxScoreTarget) or self.scored.empty:
            return picture
        boxes = self.scored.bounding_boxes.numpy()
        if view == "original" and self.original is not None and self.geometry is not None:
            height, width = self.original.shape[:2]
            boxes = boxes_to_original(boxes, height, width, *self.geometry)
        return draw_boxes(picture, boxes)

    def save(self, path: str | Path, alpha: float = 0.5, view: str = "original") -> Path:
        """Write the overlay as PNG (marked when the model has random weights); ``view`` as in :meth:`overlay`."""
        from camscope.viz import save_png

        picture = self.overlay(alpha, view=view)
        if self.random_weights:
            picture = _stamp_random_weights(picture)
        return save_png(picture, path)


def _stamp_random_weights(picture: np.ndarray) -> np.ndarray:
    """A red band across the top: an overlay of a random-weights model must never pass for a real one."""
    marked = picture.copy()
    band = max(2, picture.shape[0] // 16)
    marked[:band] = (220, 0, 0)
    return marked


def _class_name(names: Sequence[str] | None, index: int) -> str:
    return names[index] if names is not None and 0 <= index < len(names) else str(index)


def denormalize(tensor: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised (3, H, W) input back to uint8 (H, W, 3)."""
    m = torch.tensor(mean, dtype=tensor.dtype, device=tensor.device)[:, None, None]
    s = torch.tensor(std, dtype=tensor.dtype, device=tensor.device)[:, None, None]
    image = (tensor * s + m).clamp(0, 1).mul(255).round().byte()
    return image.permute(1, 2, 0).cpu().numpy()


@locked
def explain(
    model: nn.Module | str,
    images: ImageInput | Sequence[ImageInput],
    method: str | type[BaseCAM] | Sequence[str | type[BaseCAM]] = "gradcam",
    targets: TargetSpec = None,
    *,
    layers: Sequence[nn.Module | str] | None = None,
    reshape_transform: Any = None,
    top_k: int = 5,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
    **method_kwargs: Any,
) -> Explanation | list[Explanation] | dict[str, Explanation | list[Explanation]]:
    """Explain one image (→ :class:`Explanation`) or a sequence of images (→ a list), batched.

    ``model`` is a module or a zoo / timm / torchvision name; preprocessing, target layers and the
    reshape transform come from its spec unless ``layers`` (modules or dotted paths) are given.
    ``targets``: None (each image's prediction), a class index for all, or one per image; what they
    mean follows the model's output (:func:`camscope.core.targets.resolve_targets`): a classifier's class,
    a segmentation class over the pixels where it is predicted, a detector's detections.
    ``method`` may be a list of methods: the result is then ``{method name: result}``, and methods
    that read the same layer (the gradient CAMs, Eigen-CAM…) share one forward+backward pass
    (:func:`camscope.methods.shared.compute_many`); each map is the one the method gives alone.
    ``method_kwargs`` go to every listed method whose constructor takes them.
    """
    from camscope.core.layer_paths import module_path

    classes, many = method_classes(method)
    batch = model_and_batch(model, images)
    net, name, spec, x, single, pictures = batch.net, batch.name, batch.spec, batch.x, batch.single, batch.pictures
    label_free_default = all(getattr(cls, "label_free_by_default", False) for cls in classes)
    targets = request_targets(net, x, targets, keep_none=label_free_default)
    size = (int(x.shape[-2]), int(x.shape[-1]))
    target_layers, reshape = cam_layers(net, spec, classes, layers, reshape_transform, size)
    params = method_params(classes, method_kwargs, registered=many or isinstance(method, str), many=many)
    cams = build_cams(net, classes, target_layers, reshape, params, explicit_layers=layers is not None)
    computed = run_methods(cams, x, targets, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)

    outputs = cams[0].outputs  # the CAM's own forward pass on x; aug_smooth ran it on augmented copies
    if outputs is None or outputs.shape[0] != x.shape[0]:
        with torch.inference_mode():
            outputs = read_output(net(x))
    # per-class values in [0, 1]: probabilities, the area a class is predicted on, a label's best box score
    probs = class_summary(outputs)
    backbone = bool(getattr(net, "camscope_backbone", False))
    top = probs.topk(0 if backbone else min(top_k, probs.shape[1]), dim=-1)  # an embedding has no classes
    label_free = backbone or (targets is None and label_free_default)
    all_detections = isinstance(outputs, Detections) and targets is None  # every confident detection
    explained = (
        [None] * x.shape[0]
        if label_free or all_detections
        else _explained_classes(targets, probs.argmax(-1).tolist(), x.shape[0])
    )
    top_classes = [
        [
            (int(c), _class_name(spec.class_names, int(c)), float(p))
            for p, c in zip(top.values[i].tolist(), top.indices[i].tolist())
            if p > 0  # a class no pixel or detection has is not among the image's top classes
        ]
        for i in range(x.shape[0])
    ]
    views = [denormalize(x[i], spec.mean, spec.std) for i in range(x.shape[0])]
    scored = _region_targets(targets, x.shape[0])
    if all_detections:  # explained by every confident detection: those boxes, as the methods resolved them
        assert isinstance(outputs, Detections)
        scored = [confident_detections(image) for image in outputs]
    random_weights = bool(getattr(net, "camscope_random_weights", False))
    out: dict[str, Explanation | list[Explanation]] = {}
    for k, (cls, cam, maps_t) in enumerate(zip(classes, cams, computed)):
        maps = maps_t.maps
        flags = _replay(maps_t, x.shape[0])
        layer_names = [module_path(net, layer) for layer in cam.target_layers]
        results = [
            Explanation(
                map=maps[i],
                image=views[i] if k == 0 else views[i].copy(),
                target=explained[i],
                top_classes=top_classes[i],
                method=cls.name,
                layers=layer_names,
                model_name=name,
                random_weights=random_weights,
                warnings=batch.loader_warnings[i] + flags[i],
                original=pictures[i],
                geometry=(spec.preprocess.resize, spec.preprocess.crop),
                scored=scored[i],
            )
            for i in range(x.shape[0])
        ]
        out[cls.name] = results[0] if single else results
    return out if many else out[classes[0].name]


def _replay(computed: MethodMaps, n: int) -> list[list[str]]:
    """Re-emit a method's recorded warnings (so callers still see them); its CamscopeWarnings per image."""
    for record in computed.records:
        warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
    return computed.flags(n)


@locked
def attention_heads(model: nn.Module | str, image: ImageInput) -> tuple[np.ndarray, np.ndarray]:
    """Every head's class-token attention of the last block for one image — DINO's per-head picture.

    Returns the maps, float32 (heads, H, W), each upsampled and min–max scaled
    (:meth:`~camscope.methods.attention.AttentionMap.all_heads`), and the model's input view, uint8
    (H, W, 3), they lie on (draw them with :func:`camscope.viz.head_grid`). A model without class-token
    attention (CNN, Swin) raises :class:`~camscope.methods.attention_capture.AttentionUnavailableError`.
    """
    from camscope.methods.attention import AttentionMap

    batch = model_and_batch(model, [image])
    net, spec, x = batch.net, batch.spec, batch.x
    maps = AttentionMap(net).all_heads(x)[0]
    return maps, denormalize(x[0], spec.mean, spec.std)


def _region_targets(targets: TargetSpec, n: int) -> list[Target | None]:
    """Per image, the segmentation or box target it was explained with (:func:`region_target`)."""
    if is_single_target(targets):
        return [region_target(targets)] * n
    return [region_target(t) for t in targets]  # type: ignore[union-attr]


def _explained_classes(targets: TargetSpec, top1: list[int], n: int) -> list[int | None]:
    if targets is None:
        return list[int | None](top1)
    if is_single_target(targets):
        index = class_index(targets)
        return [index if index is not None else getattr(targets, "category", None)] * n
    out: list[int | None] = []
    for i, t in enumerate(targets):  # type: ignore[arg-type]
        index = None if t is None else class_index(t)
        out.append(top1[i] if t is None else index if index is not None else getattr(t, "category", None))
    return out


class Scores(dict[str, np.ndarray]):
    """``{column: per-image values}`` from :func:`evaluate`, with the curves behind them in ``curves``:
    ``{column: (x values, curves (N, K))}`` for the columns that summarise a curve (deletion_auc...).
    """

    def __init__(self) -> None:
        super().__init__()
        self.curves: dict[str, tuple[list[float], np.ndarray]] = {}
        self.score = CLASS_PROBABILITY  # what the curves' y values are (core.targets.score_name)


@locked
def evaluate(
    model: nn.Module | str,
    images: ImageInput | Sequence[ImageInput],
    explanations: Explanation | Sequence[Explanation] | np.ndarray,
    metrics: Sequence[str] = ("deletion", "insertion"),
    targets: TargetSpec = None,
    *,
    ground_truth: Any = None,
    **metric_kwargs: Any,
) -> Scores:
    """Score maps with named metrics; returns ``{column: per-image values}`` (e.g. ``deletion_auc``),
    and the curves behind them in ``.curves`` (see :class:`Scores`).

    ``explanations`` are the results of :func:`explain` for the same images (what they explain becomes
    the targets unless ``targets`` is given: the class, or the segmentation region / detection boxes of the
    target they were explained with), or raw maps (N, H, W) at the model's input size. Every score is the
    target's, read through the output adapter the explanation used: a segmentation target's logits over its
    region, a detector's matched box IoU plus score; metrics that need class scores refuse a detector by name.
    The model's own preprocessing is used, and its mean/std for metrics that work in image space.
    Localization metrics need ``ground_truth`` (boxes or masks in the model's input geometry).
    Randomisation metrics re-explain with the explanations' own method and layers (or the
    ``explain_func`` given).
    """
    from camscope.metrics import get_metric, shared_forwards

    batch = model_and_batch(model, images)
    net, spec, x = batch.net, batch.spec, batch.x
    # one memo for the whole call: a label-free target's embedding is the metrics' clean forward too
    with shared_forwards(net) as memo:
        targets = request_targets(net, x, targets, embed=lambda t: memo.logits(t, len(t)))
        made_by = None  # the explanation whose method and layers a re-explaining metric uses
        shared: dict[str, Any] = {"mean": spec.mean, "std": spec.std}
        if isinstance(explanations, np.ndarray):
            maps = explanations if explanations.ndim == 3 else explanations[None]
        else:
            items = [explanations] if isinstance(explanations, Explanation) else list(explanations)
            maps = np.stack([e.map for e in items])
            made_by = items[0]
            if targets is None and not getattr(net, "camscope_backbone", False):
                targets = [e.scored if e.scored is not None else e.target for e in items]
        if maps.shape[0] != x.shape[0]:
            raise InputError(f"{maps.shape[0]} maps for {x.shape[0]} images")
        chosen = [get_metric(name) for name in metrics]
        unused = [k for k in metric_kwargs if not any(m.takes(k) for m in chosen)]
        if unused:
            raise InputError(f"no chosen metric takes parameter(s) {', '.join(unused)}")
        scores = Scores()
        for metric in chosen:
            kwargs = metric.accepted(**{**shared, **metric_kwargs})
            if metric.takes("explain_func") and "explain_func" not in kwargs and made_by is not None:
                layers = {"layers": made_by.layers} if made_by.layers else None
                kwargs.update(metric.accepted(explain_func=made_by.method, explain_func_kwargs=layers))
            result = metric(net, x, maps, targets, ground_truth=ground_truth, **kwargs)
            scores.update(result.summary())
            scores.curves.update(metric.curves(result, x.shape[2] * x.shape[3]))
        if scores.curves:  # the metrics with curves ran the clean forward: the memo holds its output
            scores.score = score_name(memo.outputs(x, int(metric_kwargs.get("batch_size", 64))), targets)
        return scores
