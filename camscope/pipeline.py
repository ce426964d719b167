"""The one explain pipeline: targets → layers → methods → maps with their per-image warnings.

Every entry point — :func:`camscope.explain`, ``camscope explain``, the sweep worker, the app and the
benchmark scripts — runs its maps through this module, so a rule about which class is explained, which
layer is read, how methods share a pass or which image a warning belongs to is decided in one place:

- :func:`request_targets` is the target policy (class, true label, top-1, own embedding, similarity to a
  reference image; :func:`target_from_text` reads the same choices from a command line or a form);
- :func:`method_classes` / :func:`cam_layers` / :func:`build_cams` pick the methods and the layers they read;
- :func:`run_methods` computes the maps batch by batch, one shared pass per group of methods
  (:func:`camscope.methods.shared.compute_many`), and sorts each method's warnings by image
  (:func:`per_image`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import nn

from camscope.core.capture import model_device, model_lock
from camscope.core.errors import CamscopeWarning, InputError, TargetError
from camscope.core.targets import TargetSpec, model_logits, own_embedding_targets
from camscope.methods import get_method
from camscope.methods.base import BaseCAM
from camscope.methods.shared import compute_many

MethodSpec = str | type[BaseCAM]
_Call = TypeVar("_Call", bound=Callable[..., Any])
ImageInput = Any  # a path, a PIL image or a uint8 H×W×3 array


# ---------------------------------------------------------------------------- inputs
def as_model(model: nn.Module | str) -> tuple[nn.Module, str]:
    if isinstance(model, str):
        from camscope.models import load_model

        return load_model(model), model
    return model, getattr(model, "camscope_name", type(model).__name__)


@dataclass
class Batch:
    """A request's model and images, ready for the methods."""

    net: nn.Module
    name: str
    spec: Any
    x: torch.Tensor  # the images preprocessed, one batch on the model's device
    single: bool  # one image was given (not a sequence)
    pictures: list[np.ndarray]  # the images as uint8 (H, W, 3) arrays, for overlays on the original
    loader_warnings: list[list[str]]  # per image: what the image loader warned about (shown, and kept here)


def locked(func: _Call) -> _Call:
    """Hold the model's lock (:func:`camscope.core.capture.model_lock`) for the whole call: several threads
    may share one model, and each gets exactly the result of a call made alone (a name loads a model
    of the call's own, which needs no lock)."""

    @functools.wraps(func)
    def call(model: nn.Module | str, *args: Any, **kwargs: Any) -> Any:
        if isinstance(model, nn.Module):
            with model_lock(model):
                return func(model, *args, **kwargs)
        return func(model, *args, **kwargs)

    return cast(_Call, call)


def model_and_batch(model: nn.Module | str, images: Any) -> Batch:
    """The model, its spec and the images as one preprocessed batch; paths go through the one image loader."""
    from camscope.models import get_spec

    net, name = as_model(model)
    with warnings.catch_warnings(record=True) as described:  # e.g. a normalisation the model does not carry
        warnings.simplefilter("always", CamscopeWarning)
        spec = get_spec(model if isinstance(model, str) else net)
    for record in described:
        warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
    single = not isinstance(images, (list, tuple))
    batch_images = [images] if single else list(images)
    if not batch_images:
        raise InputError("no images given")
    inputs, pictures, loaded = [], [], []
    for index, image in enumerate(batch_images):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CamscopeWarning)
            tensor, picture = _input_and_picture(spec, image, index)
        for record in caught:
            warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
        inputs.append(tensor)
        pictures.append(picture)
        loaded.append(recorded_texts([*described, *caught]))  # the model's warnings concern every image
    x = torch.stack(inputs).to(model_device(net))
    return Batch(net, name, spec, x, single, pictures, loaded)


#: the most pixels of the picture an explanation keeps for overlays on the original (6000×6000): an
#: overlay costs ~20 bytes per pixel to draw, so a larger image is drawn downscaled, with a warning
MAX_OVERLAY_PIXELS = 36_000_000


def _input_and_picture(spec: Any, image: ImageInput, index: int) -> tuple[torch.Tensor, np.ndarray]:
    """The model's input from the image at full resolution (through the one image loader), and the
    picture kept for overlays, at most :data:`MAX_OVERLAY_PIXELS`; the full image is dropped here."""
    from camscope.core.errors import warn
    from camscope.data.images import as_rgb_image, limit_pixels

    full = as_rgb_image(image)
    tensor = spec.preprocess(full)
    picture, scaled = limit_pixels(full, MAX_OVERLAY_PIXELS)
    if scaled:
        label = f"image {image}" if isinstance(image, (str, Path)) else f"image {index}"
        warn(
            f"{label} is {full.width}x{full.height} px: its overlay is drawn at "
            f"{picture.shape[1]}x{picture.shape[0]} px to bound memory (the model's input is unchanged)"
        )
    return tensor, picture


@locked
def embed(model: nn.Module | str, images: ImageInput | Sequence[ImageInput]) -> torch.Tensor:
    """The model's output for images (an embedding for ``load_model(name, head=False)``), (N, D)."""
    batch = model_and_batch(model, images if isinstance(images, (list, tuple)) else [images])
    with torch.inference_mode():
        return model_logits(batch.net(batch.x)).clone()


# ---------------------------------------------------------------------------- targets
def request_targets(
    net: nn.Module,
    x: torch.Tensor,
    targets: Any,
    *,
    keep_none: bool = False,
    embed: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Any:
    """The targets a request explains, with ``"embedding"`` (and ``None`` on a backbone) turned into each
    image's own embedding.

    The own-embedding target is the inner product ⟨f(x), f(x̃)⟩ (Label-Free XAI), not the cosine, whose
    gradient vanishes at x̃ = x. ``keep_none``: the methods' own default is label-free already (RELAX).
    ``embed`` runs the clean images (default: one forward; :func:`camscope.evaluate` passes its memo's).
    Anything else (None for top-1, class indices, target callables) is returned as it is.
    """
    backbone = bool(getattr(net, "camscope_backbone", False))
    if targets == "embedding" or (targets is None and backbone and not keep_none):
        if keep_none and targets == "embedding":
            return None
        if embed is None:
            with torch.inference_mode():
                own = model_logits(net(x))
        else:
            own = embed(x)
        return own_embedding_targets(own.clone())
    return targets


def class_targets(predicted: Sequence[int], labels: Sequence[int | None], use_label: bool) -> list[int]:
    """Per image: the true label where asked for and known, else the model's top-1 class."""
    return [lab if use_label and lab is not None else top for lab, top in zip(labels, predicted)]


def similarity_to(net: nn.Module, reference: Any) -> Any:
    """Cosine similarity to ``reference``'s embedding (an image path, PIL image or uint8 array)."""
    from camscope.core.targets import SimilarityTarget

    return SimilarityTarget(embed(net, reference)[0], kind="cosine")


def target_from_text(
    text: str | None, model: nn.Module, reference: Any = None, image_size: tuple[int, int] | None = None
) -> Any:
    """A target typed by a user (``--target``, the app's field): empty for top-1, ``embedding``,
    ``similarity:REF`` (an image file), ``box:X1,Y1,X2,Y2`` (a detector's detection at that box), a class
    index or a class name of the model's spec.

    ``reference``: an image already loaded for ``similarity`` (the app's reference picture).
    ``image_size``: ``(width, height)`` of the image a box was typed for: the box is in that image's pixels,
    as a person reads them off the picture (and as ``--boxes`` ground truth is), and is moved onto the
    model's input through its resize and crop; without it the box is in the input's pixels already.
    """
    if reference is not None:
        return similarity_to(model, reference)
    if text is None or text == "" or text == "embedding":
        return text or None
    kind, _, ref = text.partition(":")
    if kind == "similarity" and ref:
        from camscope.data import load_image

        return similarity_to(model, load_image(ref))
    if kind == "box" and ref:
        from camscope.core.targets import BoxScoreTarget

        try:
            box = parse_box(ref)
        except ValueError as exc:
            raise TargetError(str(exc)) from None
        return BoxScoreTarget(None, [box if image_size is None else _box_on_input(box, model, image_size, ref)])
    if text.isdigit():
        return int(text)
    from camscope.models import get_spec

    return get_spec(model).parse_class(text)


def _box_on_input(box: list[float], model: nn.Module, image_size: tuple[int, int], text: str) -> list[float]:
    """A box in an image's pixels moved through the model's resize and crop onto its input's pixels."""
    from camscope.core.errors import MetricInputError
    from camscope.metrics.groundtruth import transform_boxes
    from camscope.models import get_spec

    preprocess = get_spec(model).preprocess
    try:
        moved = transform_boxes(np.array([box]), image_size, preprocess.resize, preprocess.crop, what=f"box:{text}")
    except MetricInputError as exc:
        raise TargetError(str(exc)) from None
    if not len(moved):
        raise TargetError(f"box:{text} lies in the border the model's centre crop cuts away: it sees none of it")
    return [float(v) for v in moved[0]]


def parse_box(text: str) -> list[float]:
    """``X1,Y1,X2,Y2`` (a detection's box) as four floats."""
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or box[0] >= box[2] or box[1] >= box[3]:
        raise ValueError(f"box:{text} is not a box: give box:X1,Y1,X2,Y2 with X1 < X2 and Y1 < Y2")
    return box


# ---------------------------------------------------------------------------- methods and layers
def method_classes(method: MethodSpec | Sequence[MethodSpec]) -> tuple[list[type[BaseCAM]], bool]:
    """The method classes of a request and whether several were asked for (a list, even of one)."""
    many = not isinstance(method, str) and isinstance(method, Sequence)
    chosen: Sequence[MethodSpec] = method if many else [method]  # type: ignore[list-item,assignment]
    classes = [get_method(m) if isinstance(m, str) else m for m in chosen]
    if not classes:
        raise InputError("no methods given")
    return classes, many


def cam_layers(
    net: nn.Module,
    spec: Any,
    classes: Sequence[type[BaseCAM]],
    layers: Sequence[nn.Module | str] | None,
    reshape_transform: Any,
    input_size: tuple[int, int],
) -> tuple[list[nn.Module] | None, Any]:
    """The target layers and reshape transform: the spec's defaults, or the named ``layers`` (a token
    model's named layer gets the reshape transform derived from its output)."""
    if layers is None:
        # methods that pick their own layers (FullGrad, attention methods, RELAX) get None in build_cams
        takes = any(cls.takes_layers for cls in classes)
        target_layers, reshape = spec.cam_layers(net) if takes else (None, None)
    elif reshape_transform is not None:
        from camscope.core.layer_paths import resolve_layers

        target_layers, reshape = resolve_layers(net, layers), None
    else:
        from camscope.models.layers import cam_layers_from_names

        target_layers, reshape = cam_layers_from_names(net, list(layers), input_size)
    if reshape_transform is not None:
        reshape = reshape_transform
    return target_layers, reshape


def build_cams(
    net: nn.Module,
    classes: Sequence[type[BaseCAM]],
    target_layers: Sequence[nn.Module] | None,
    reshape: Any,
    params: Mapping[type[BaseCAM], Mapping[str, Any]],
    explicit_layers: bool = False,
) -> list[BaseCAM]:
    """One CAM per class; a method that picks its own layers gets them unless layers were named."""
    cams = []
    for cls in classes:
        own_layers = not explicit_layers and not cls.takes_layers
        kwargs = dict(params.get(cls, {}))
        make: Callable[..., BaseCAM] = cls  # methods that pick their own layers take None for them
        cams.append(make(net, None if own_layers else target_layers, None if own_layers else reshape, **kwargs))
    return cams


def method_params(
    classes: Sequence[type[BaseCAM]], kwargs: Mapping[str, Any], registered: bool, many: bool
) -> dict[type[BaseCAM], dict[str, Any]]:
    """Each class's constructor keywords out of one set of ``kwargs``: with several methods each takes
    those it declares; a keyword no registered method declares is an error naming the accepted ones."""
    unknown = sorted(k for k in kwargs if not any(k in cls.params for cls in classes))
    if unknown and registered:  # registered methods: their declarations are the full list
        accepted = ", ".join(sorted({p for cls in classes for p in cls.params})) or "none"
        names = ", ".join(cls.name or cls.__name__ for cls in classes)
        raise InputError(f"method {names} takes no parameter(s) {', '.join(unknown)} (accepted: {accepted})")
    return {cls: ({k: v for k, v in kwargs.items() if k in cls.params} if many else dict(kwargs)) for cls in classes}


# ---------------------------------------------------------------------------- maps
@dataclass
class MethodMaps:
    """One method's maps for a batch of images, with what it cost and what it warned about."""

    cam: BaseCAM
    maps: np.ndarray  # float32 (N, H, W)
    seconds: float  # CAM seconds for the whole batch: its own work plus an equal share of a shared pass
    messages: list[Warning] = field(default_factory=list)  # image positions relative to the whole batch
    records: list[warnings.WarningMessage] = field(default_factory=list)  # as recorded, for re-emission

    def flags(self, n: int) -> list[list[str]]:
        """The CamscopeWarning texts per image (:func:`per_image`)."""
        return per_image(self.messages, n)


def run_methods(
    cams: Sequence[BaseCAM],
    x: torch.Tensor,
    targets: TargetSpec | Sequence[Any],
    *,
    batch_size: int | None = None,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
    label_free: bool = False,
) -> list[MethodMaps]:
    """The maps of every CAM for ``x``, ``batch_size`` images at a time (None: all at once), with one
    shared pass per group of methods per batch.

    ``label_free``: a label-free request; methods whose own default score is label-free (RELAX) are
    then given no targets. Warnings are recorded, not shown: the caller re-emits them
    (:meth:`MethodMaps.records`) where its user sees them.
    """
    n = x.shape[0]
    size = n if batch_size is None else batch_size
    if label_free and all(getattr(cam, "label_free_by_default", False) for cam in cams):
        targets = None
    seconds = [0.0] * len(cams)
    flagged: list[list[Warning]] = [[] for _ in cams]
    recorded: list[list[warnings.WarningMessage]] = [[] for _ in cams]
    chunks: list[list[torch.Tensor]] = []
    for start in range(0, n, size):
        chunk_seconds: list[float] = []
        caught: list[list[warnings.WarningMessage]] = []
        chunk_targets = _slice_targets(targets, start, start + size, n)
        chunks.append(
            compute_many(
                cams,
                x[start : start + size],
                chunk_targets,
                aug_smooth=aug_smooth,
                eigen_smooth=eigen_smooth,
                seconds=chunk_seconds,
                caught=caught,
            )
        )
        seconds = [a + b for a, b in zip(seconds, chunk_seconds)]
        for k, records in enumerate(caught):
            for record in records:  # image positions are batch-relative: make them relative to x
                message = record.message if isinstance(record.message, Warning) else UserWarning(record.message)
                if isinstance(message, CamscopeWarning) and message.images is not None and start:
                    message = CamscopeWarning(message.text, [start + i for i in message.images])
                    record = warnings.WarningMessage(
                        message, record.category, record.filename, record.lineno, record.file, record.line
                    )
                flagged[k].append(message)
                recorded[k].append(record)
    out = []
    for k, cam in enumerate(cams):
        maps = np.concatenate([chunk[k].detach().float().cpu().numpy() for chunk in chunks]).astype(np.float32)
        out.append(MethodMaps(cam, maps, seconds[k], flagged[k], recorded[k]))
    return out


def _slice_targets(targets: Any, start: int, stop: int, n: int) -> Any:
    """The targets of images ``start:stop``: a per-image sequence is sliced, one target for all is kept."""
    if stop - start >= n and start == 0:
        return targets
    if isinstance(targets, (list, tuple)):
        return targets[start:stop]
    return targets


def per_image(messages: Sequence[Warning | str], n: int) -> list[list[str]]:
    """CamscopeWarning texts per image position, each text once per image.

    A warning without positions concerns every image; positions past ``n`` (the copies ``aug_smooth``
    adds) fold back onto their image.
    """
    flags: list[list[str]] = [[] for _ in range(n)]
    for message in messages:
        if not isinstance(message, CamscopeWarning):
            continue
        for i in range(n) if message.images is None else [i % n for i in message.images]:
            if message.text not in flags[i]:
                flags[i].append(message.text)
    return flags


def recorded_texts(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    """The distinct CamscopeWarning texts of a recorded block (loader warnings, which concern one image)."""
    out: list[str] = []
    for record in caught:
        if isinstance(record.message, CamscopeWarning) and record.message.text not in out:
            out.append(record.message.text)
    return out
