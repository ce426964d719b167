"""The one-call API: ``camscope.explain(model, image, method=...)``.

It joins the pieces a user would otherwise wire by hand — the model's own preprocessing, its default
target layers and reshape transform (from the zoo spec, or inferred for any timm/torchvision model),
the method, and the top classes — and returns the map together with the image exactly as the model
saw it (after resize and crop), so overlays line up.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from camscope.capture import model_device
from camscope.errors import CamscopeWarning, InputError
from camscope.methods import get_method
from camscope.methods.base import BaseCAM
from camscope.outputs import Detections, class_summary, read_output
from camscope.targets import TargetSpec, class_index, is_single_target, model_logits

ImageInput = Any  # a path, a PIL image or a uint8 H×W×3 array
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
    original: np.ndarray | None = None  # uint8 (H0, W0, 3): the image as given, before resize and crop
    geometry: tuple[Any, Any] | None = None  # (resize, crop) of the model's preprocessing

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
            return overlay(self.image, self.map, alpha=alpha, colormap=colormap)
        mapped, inside = self.original_map()
        return mark_outside(overlay(self.original, mapped, alpha=alpha, colormap=colormap), inside)

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


def _as_model(model: nn.Module | str) -> tuple[nn.Module, str]:
    if isinstance(model, str):
        from camscope.models import load_model

        return load_model(model), model
    return model, getattr(model, "camscope_name", type(model).__name__)


def _model_and_batch(
    model: nn.Module | str, images: Any
) -> tuple[nn.Module, str, Any, torch.Tensor, bool, list[np.ndarray]]:
    """The model, its name and spec, the images as one preprocessed batch on the model's device, whether
    one image was given, and the images as uint8 arrays (for overlays on the original)."""
    from camscope.data.images import as_rgb_array
    from camscope.models import get_spec

    net, name = _as_model(model)
    spec = get_spec(model if isinstance(model, str) else net)
    single = not isinstance(images, (list, tuple))
    batch_images = [images] if single else list(images)
    if not batch_images:
        raise InputError("no images given")
    pictures = [as_rgb_array(img) for img in batch_images]  # paths go through the one image loader
    x = torch.stack([spec.preprocess(p) for p in pictures]).to(model_device(net))
    return net, name, spec, x, single, pictures


def _class_name(names: Sequence[str] | None, index: int) -> str:
    return names[index] if names is not None and 0 <= index < len(names) else str(index)


def denormalize(tensor: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised (3, H, W) input back to uint8 (H, W, 3)."""
    m = torch.tensor(mean, dtype=tensor.dtype, device=tensor.device)[:, None, None]
    s = torch.tensor(std, dtype=tensor.dtype, device=tensor.device)[:, None, None]
    image = (tensor * s + m).clamp(0, 1).mul(255).round().byte()
    return image.permute(1, 2, 0).cpu().numpy()


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
    mean follows the model's output (:func:`camscope.targets.resolve_targets`): a classifier's class,
    a segmentation class over the pixels where it is predicted, a detector's detections.
    ``method`` may be a list of methods: the result is then ``{method name: result}``, and methods
    that read the same layer (the gradient CAMs, Eigen-CAM…) share one forward+backward pass
    (:func:`camscope.methods.shared.compute_many`); each map is the one the method gives alone.
    ``method_kwargs`` go to every listed method whose constructor takes them.
    """
    from camscope.capture import module_path
    from camscope.methods.shared import compute_many

    many = not isinstance(method, str) and isinstance(method, Sequence)
    classes = [get_method(m) if isinstance(m, str) else m for m in (method if many else [method])]
    if not classes:
        raise InputError("no methods given")
    net, name, spec, x, single, pictures = _model_and_batch(model, images)
    label_free_default = all(getattr(cls, "label_free_by_default", False) for cls in classes)
    targets = _label_free_targets(net, x, targets, keep_none=label_free_default)
    if layers is None:
        # methods that pick their own layers (FullGrad, attention methods, RELAX) get None below
        takes = any(cls.takes_layers for cls in classes)
        target_layers, reshape = spec.cam_layers(net) if takes else (None, None)
    elif reshape_transform is not None:
        from camscope.layer_paths import resolve_layers

        target_layers, reshape = resolve_layers(net, layers), None
    else:
        # a named layer of a token model needs its reshape transform too: derive it from the layer's output
        from camscope.models.layers import cam_layers_from_names

        target_layers, reshape = cam_layers_from_names(net, list(layers), tuple(x.shape[-2:]))
    if reshape_transform is not None:
        reshape = reshape_transform

    unknown = sorted(k for k in method_kwargs if not any(k in cls.params for cls in classes))
    if unknown and (many or isinstance(method, str)):  # registered methods: their declarations are the full list
        accepted = ", ".join(sorted({p for cls in classes for p in cls.params})) or "none"
        names = ", ".join(cls.name or cls.__name__ for cls in classes)
        raise InputError(f"method {names} takes no parameter(s) {', '.join(unknown)} (accepted: {accepted})")
    cams = []
    for cls in classes:
        kwargs = {k: v for k, v in method_kwargs.items() if k in cls.params} if many else method_kwargs
        own_layers = layers is None and not cls.takes_layers
        cams.append(cls(net, None if own_layers else target_layers, None if own_layers else reshape, **kwargs))
    caught: list[list[warnings.WarningMessage]] = []
    all_maps = compute_many(cams, x, targets, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth, caught=caught)

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
        ]
        for i in range(x.shape[0])
    ]
    views = [denormalize(x[i], spec.mean, spec.std) for i in range(x.shape[0])]
    random_weights = bool(getattr(net, "camscope_random_weights", False))
    out: dict[str, Explanation | list[Explanation]] = {}
    for k, (cls, cam, maps_t) in enumerate(zip(classes, cams, all_maps)):
        maps = maps_t.detach().float().cpu().numpy()
        flags = _replay(caught[k], x.shape[0])
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
                warnings=flags[i],
                original=pictures[i],
                geometry=(spec.preprocess.resize, spec.preprocess.crop),
            )
            for i in range(x.shape[0])
        ]
        out[cls.name] = results[0] if single else results
    return out if many else out[classes[0].name]


def _replay(caught: list[warnings.WarningMessage], n: int) -> list[list[str]]:
    """Re-emit recorded warnings (so callers still see them) and sort CamscopeWarnings per image."""
    flags: list[list[str]] = [[] for _ in range(n)]
    for record in caught:
        message = record.message
        if isinstance(message, CamscopeWarning):
            for i in range(n) if message.images is None else [i % n for i in message.images]:
                if message.text not in flags[i]:
                    flags[i].append(message.text)
        warnings.warn_explicit(message, record.category, record.filename, record.lineno)
    return flags


def embed(model: nn.Module | str, images: ImageInput | Sequence[ImageInput]) -> torch.Tensor:
    """The model's output for images (an embedding for ``load_model(name, head=False)``), (N, D)."""
    net, _, _, x, _, _ = _model_and_batch(model, images if isinstance(images, (list, tuple)) else [images])
    with torch.inference_mode():
        return model_logits(net(x)).clone()


def attention_heads(model: nn.Module | str, image: ImageInput) -> tuple[np.ndarray, np.ndarray]:
    """Every head's class-token attention of the last block for one image — DINO's per-head picture.

    Returns the maps, float32 (heads, H, W), each upsampled and min–max scaled
    (:meth:`~camscope.methods.attention.AttentionMap.all_heads`), and the model's input view, uint8
    (H, W, 3), they lie on (draw them with :func:`camscope.viz.head_grid`). A model without class-token
    attention (CNN, Swin) raises :class:`~camscope.attention.AttentionUnavailableError`.
    """
    from camscope.methods.attention import AttentionMap

    net, _, spec, x, _, _ = _model_and_batch(model, [image])
    maps = AttentionMap(net).all_heads(x)[0]
    return maps, denormalize(x[0], spec.mean, spec.std)


def _label_free_targets(
    net: nn.Module,
    x: torch.Tensor,
    targets: Any,
    keep_none: bool = False,
    embed: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Any:
    """``"embedding"`` (and ``None`` on a backbone) → each image explained by its own embedding.

    The target is the inner product ⟨f(x), f(x̃)⟩ (Label-Free XAI), not the cosine, whose gradient
    vanishes at x̃ = x. ``keep_none``: the method's own default is label-free already (RELAX).
    ``embed`` runs the clean images (default: one forward; :func:`evaluate` passes its forward memo's).
    """
    backbone = bool(getattr(net, "camscope_backbone", False))
    if targets == "embedding" or (targets is None and backbone and not keep_none):
        if keep_none and targets == "embedding":
            return None
        from camscope.targets import own_embedding_targets

        if embed is None:
            with torch.inference_mode():
                own = model_logits(net(x))
        else:
            own = embed(x)
        return own_embedding_targets(own.clone())
    return targets


def _explained_classes(targets: TargetSpec, top1: list[int], n: int) -> list[int | None]:
    if targets is None:
        return top1
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

    ``explanations`` are the results of :func:`explain` for the same images (their explained classes
    become the targets unless ``targets`` is given), or raw maps (N, H, W) at the model's input size.
    The model's own preprocessing is used, and its mean/std for metrics that work in image space.
    Localization metrics need ``ground_truth`` (boxes or masks in the model's input geometry).
    """
    from camscope.metrics import get_metric, shared_forwards

    net, _, spec, x, _, _ = _model_and_batch(model, images)
    # one memo for the whole call: a label-free target's embedding is the metrics' clean forward too
    with shared_forwards(net) as memo:
        targets = _label_free_targets(net, x, targets, embed=lambda t: memo.logits(t, len(t)))
        if isinstance(explanations, np.ndarray):
            maps = explanations if explanations.ndim == 3 else explanations[None]
        else:
            items = [explanations] if isinstance(explanations, Explanation) else list(explanations)
            maps = np.stack([e.map for e in items])
            if targets is None and not getattr(net, "camscope_backbone", False):
                targets = [e.target for e in items]
        if maps.shape[0] != x.shape[0]:
            raise InputError(f"{maps.shape[0]} maps for {x.shape[0]} images")
        chosen = [get_metric(name) for name in metrics]
        unused = [k for k in metric_kwargs if not any(m.takes(k) for m in chosen)]
        if unused:
            raise InputError(f"no chosen metric takes parameter(s) {', '.join(unused)}")
        scores = Scores()
        for metric in chosen:
            kwargs = metric.accepted(**{"mean": spec.mean, "std": spec.std, **metric_kwargs})
            result = metric(net, x, maps, targets, ground_truth=ground_truth, **kwargs)
            scores.update(result.summary())
            scores.curves.update(metric.curves(result, x.shape[2] * x.shape[3]))
        return scores
