"""Ablation-CAM at a torchvision detector's backbone: only the heads run for each ablated copy.

A torchvision detector (Faster, Mask, Keypoint R-CNN; RetinaNet, FCOS, SSD) cannot be cut by the traced
tail (:mod:`camscope.methods.ablation_tail`): its forward takes images, and its heads read the resized
image sizes besides the backbone's pyramid. Its forward is a fixed sequence, though: transform, backbone,
heads, postprocess. The transform's result (the resized batch and its image sizes) is the same for every
ablated copy of an image, so it is computed once here; an ablation batch runs the model's own forward with
the transform and the backbone replaced by their results, where a full forward would also normalise and
resize every copy of the image.

Within one ablation batch, a pyramid level in which no channel is ablated is the same in every copy
(:meth:`AblationCAM._named_scores` passes it as a stride-0 view of the unablated map). The first head (a
two-stage detector's RPN head, a one-stage detector's whole head) scores each level on its own, so such a
level is scored on one copy, once per image, and its scores are shared by every batch that leaves it
alone; the head's convolutions over every level of every copy are most of the cost after the backbone.

Like every tail, it is verified on the real input before use: the head must give the same scores level
by level as for the whole pyramid (else whole copies are scored), and the heads on two unablated copies
of the pyramid must reproduce the model's own detections, or the caller runs full forward passes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from camscope.core.outputs import Detections


@contextmanager
def forward_replaced(module: nn.Module, forward: Callable[..., Any]) -> Iterator[None]:
    """While active, calling ``module`` runs ``forward`` (its hooks still run around it)."""
    own = module.__dict__.get("forward")  # a forward set on the instance itself, if any
    module.forward = forward
    try:
        yield
    finally:
        if own is None:
            del module.forward  # the class's forward again
        else:
            module.forward = own


def _shared(level: torch.Tensor) -> bool:
    """Whether every copy along the batch is the same memory (a stride-0 view): the same values."""
    return level.shape[0] > 1 and level.stride(0) == 0


def _expand_all(values: Any, count: int) -> Any:
    """``values`` (tensors of batch 1, possibly in lists, tuples or dicts) viewed as ``count`` copies."""
    if isinstance(values, torch.Tensor):
        return values.expand(count, *values.shape[1:])
    if isinstance(values, (list, tuple)):
        return type(values)(_expand_all(value, count) for value in values)
    if isinstance(values, Mapping):
        return {key: _expand_all(value, count) for key, value in values.items()}
    return values


def _join(parts: list[Any]) -> Any:
    """One head output for all levels from each level's own: an RPN head's per-level lists appended, a
    one-stage head's dict of (batch, anchors, ...) tensors joined along the anchors, level after level."""
    if isinstance(parts[0], Mapping):
        return {key: torch.cat([part[key] for part in parts], dim=1) for key in parts[0]}
    return tuple([items[0] for items in part] for part in zip(*parts))


def _per_level(
    head: Callable[[list[torch.Tensor]], Any], scored: dict[tuple[Any, ...], Any]
) -> Callable[[list[torch.Tensor]], Any]:
    """``head`` (pyramid levels in) called level by level, each level shared by the whole batch computed on
    one copy, once: ``scored`` keeps its scores by the memory it views, which is the unablated map of the
    image in every batch that leaves it alone."""

    def shared_scores(level: torch.Tensor) -> Any:
        key = (level.data_ptr(), tuple(level.shape[1:]), level.stride()[1:], level.dtype)
        if key not in scored:
            scored[key] = head([level[:1]])
        return _expand_all(scored[key], level.shape[0])

    def run(levels: list[torch.Tensor]) -> Any:
        return _join([shared_scores(level) if _shared(level) else head([level]) for level in levels])

    return run


def first_head(model: nn.Module) -> nn.Module | None:
    """The head that reads the pyramid of a torchvision detector in eval mode (None for anything else): a
    two-stage detector's RPN head, a RetinaNet's, FCOS's or SSD's head."""
    if model.training:
        return None
    rcnn = sys.modules.get("torchvision.models.detection.generalized_rcnn")  # loaded if the model is one
    if rcnn is not None and isinstance(model, rcnn.GeneralizedRCNN):
        return model.rpn.head  # type: ignore[no-any-return]
    for module, name in (("retinanet", "RetinaNet"), ("fcos", "FCOS"), ("ssd", "SSD")):
        kind = getattr(sys.modules.get(f"torchvision.models.detection.{module}"), name, None)
        if kind is not None and isinstance(model, kind):
            return model.head  # type: ignore[no-any-return]
    return None


class DetectorTail:
    """A torchvision detector after its backbone, for one image whose transform ran once."""

    def __init__(self, model: Any, head: nn.Module, image: torch.Tensor) -> None:
        self.model = model  # a torchvision detector: its parts (transform, backbone) typed loosely
        self.head = head
        self.image = image[0]
        self.images, _ = model.transform([image[0]])
        self.per_level = True
        #: the head's scores of levels shared by a batch; the maps they view (the image's unablated
        #: pyramid, never written: ablated levels are copies) outlive this tail
        self.scored: dict[tuple[Any, ...], Any] = {}

    def __call__(self, features: Mapping[str, torch.Tensor]) -> Detections:
        """The detections of each copy of the image, given each copy's pyramid (B copies per level)."""
        from torchvision.models.detection.image_list import ImageList

        count = next(iter(features.values())).shape[0]
        tensors = self.images.tensors
        images = ImageList(tensors.expand(count, *tensors.shape[1:]), self.images.image_sizes * count)
        model, head = self.model, self.head
        with (
            forward_replaced(model.transform, lambda _images, targets=None: (images, targets)),
            forward_replaced(model.backbone, lambda _tensors: dict(features)),
            forward_replaced(head, _per_level(head.forward, self.scored)) if self.per_level else nullcontext(),
        ):
            return Detections(model([self.image] * count))  # the copies' original size: the image's

    def reproduces(self, features: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> bool:
        """Whether two shared copies of the unablated pyramid give the model's own detections twice."""
        found = self({key: value.expand(2, *value.shape[1:]) for key, value in features.items()})
        return all(_same(image, expected) for image in found)


def _same(found: Any, expected: Any, atol: float = 1e-4) -> bool:
    """Whether two head outputs (tensors, possibly in lists, tuples or dicts) hold the same values."""
    if isinstance(expected, torch.Tensor):
        return (
            isinstance(found, torch.Tensor)
            and found.shape == expected.shape
            and (not expected.numel() or torch.allclose(found.float(), expected.float(), atol=atol, rtol=1e-4))
        )
    if isinstance(expected, Mapping):
        return (
            isinstance(found, Mapping)
            and set(found) == set(expected)
            and all(_same(found[key], value, atol) for key, value in expected.items())
        )
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(found, (list, tuple))
            and len(found) == len(expected)
            and all(_same(a, b, atol) for a, b in zip(found, expected))
        )
    return bool(found == expected)


def _scores_by_level(head: nn.Module, features: Mapping[str, torch.Tensor], scored: dict[tuple[Any, ...], Any]) -> bool:
    """Whether ``head`` gives the same scores level by level as for the whole pyramid, on two copies of it
    (each level's scores kept in ``scored``, as the ablation batches that leave it alone will read them).

    Checked on the head itself, not only on the detections: a level whose anchors make none of the image's
    top detections (SSD's second level, scored by the first level's layers) would pass that check.
    """
    levels = [value.expand(2, *value.shape[1:]) for value in features.values()]
    return _same(_per_level(head.forward, scored)(levels), head(levels))


def build_detector_tail(
    model: nn.Module,
    layer_path: str,
    image: torch.Tensor,
    features: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
) -> DetectorTail | None:
    """The heads of ``model`` after layer ``layer_path`` for ``image`` (1, 3, H, W), verified against the
    model's ``expected`` detections for it (``features``: its unablated pyramid, batch 1); None where the
    model is no torchvision detector cut at its backbone, or the heads do not reproduce it."""
    head = first_head(model)
    if head is None or layer_path != "backbone":
        return None
    tail = DetectorTail(model, head, image)
    # a head that mixes levels, or has its own layers for each (SSD's), scores whole copies
    tail.per_level = _scores_by_level(head, features, tail.scored)
    return tail if tail.reproduces(features, expected) else None
