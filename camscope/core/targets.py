"""What a CAM explains: one scalar per image, taken from the model's output.

A target is any callable mapping one image's output row (shape ``(num_classes,)``) to a scalar
tensor, exactly as in pytorch-grad-cam, so its targets work here unchanged. The classes below also
know their class index, which lets the engine validate it against the output size and score a whole
batch with one gather instead of a Python loop.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from camscope.core.errors import CamscopeError, TargetError, warn
from camscope.core.outputs import Detections, Outputs, class_summary, read_scores

Target = Callable[[Any], torch.Tensor]
TargetSpec = None | int | Target | Sequence[int | Target | None]


class ClassifierOutputTarget:
    """The raw logit of class ``category``."""

    def __init__(self, category: int) -> None:
        index = class_index(category)
        if index is None:
            raise _bad_target(category)
        self.category = index

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        if model_output.ndim == 1:
            return model_output[self.category]
        return model_output[:, self.category]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.category})"


class ClassifierOutputSoftmaxTarget(ClassifierOutputTarget):
    """The softmax probability of class ``category``."""

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model_output, dim=-1)[..., self.category]


def model_logits(output: Any) -> torch.Tensor:
    """The score tensor of a model output (see :func:`camscope.core.outputs.read_output`); detections are refused."""
    return read_scores(output)


def class_index(value: Any) -> int | None:
    """``value`` as a class index if it is one (int, numpy integer, 0-d integer tensor/array), else None.

    Floats are refused rather than truncated (``3.7`` is almost surely a mistake, not class 3), and
    negative indices too: ``-1`` would silently mean "the last class", which is never what a user asks.
    """
    if isinstance(value, torch.Tensor):
        if value.ndim != 0 or value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            return None
        value = int(value.item())
    elif isinstance(value, np.ndarray):
        if value.ndim != 0 or value.dtype.kind not in "iu":
            return None
        value = int(value.item())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        return None
    index = int(value)
    if index < 0:
        raise TargetError(f"target class {index} is negative: class indices start at 0")
    return index


def is_single_target(targets: Any) -> bool:
    """True for one target meant for every image (None, an index, a callable), False for a sequence."""
    if targets is None or callable(targets) or isinstance(targets, (numbers.Number, np.generic, str, bytes)):
        return True
    return isinstance(targets, (torch.Tensor, np.ndarray)) and targets.ndim == 0


def _bad_target(entry: Any) -> TargetError:
    if isinstance(entry, (float, np.floating)) or (isinstance(entry, (torch.Tensor, np.ndarray)) and entry.ndim == 0):
        return TargetError(f"target {entry!r} is not a class index: give an int such as 3 (not a float)")
    return TargetError(f"target {entry!r} is not a class index or a callable")


def resolve_targets(targets: TargetSpec, logits: Outputs) -> list[Target]:
    """One target per image of the batch: the one target policy of every entry point.

    ``None`` explains each image's prediction; an int or a single target callable is broadcast to
    every image (documented behaviour); a sequence must have exactly one entry per image (an entry
    may be None). What None and an int mean depends on what the model outputs:

    - class scores (N, K): the top-1 class / that class's logit (one logit, a binary head: the
      predicted side / class 0 or 1, :class:`BinaryTarget`);
    - dense scores (N, K, H, W), segmentation: the class predicted on most pixels / that class,
      each summed over the pixels where the model predicts it (:class:`SegmentationTarget`);
    - :class:`~camscope.core.outputs.Detections`: every detection scoring at least
      :data:`DETECTION_THRESHOLD` / those of that label (:class:`BoxScoreTarget`).

    Class indices are checked against the number of outputs; targets that depend on the clean
    prediction (a segmentation region, a box's label) are fixed here from it.
    """
    if isinstance(logits, Detections):
        n = len(logits)
    elif logits.ndim in (2, 4):
        n = logits.shape[0]
    else:
        raise TargetError(
            f"expected class scores (batch, classes) or dense scores (batch, classes, H, W), got {tuple(logits.shape)}"
        )
    if is_single_target(targets):
        entries: list[Any] = [targets] * n
    else:
        entries = list(targets)  # type: ignore[arg-type]
        if len(entries) != n:
            raise TargetError(
                f"got {len(entries)} targets for a batch of {n} images: give one target per image, "
                "or a single target to use for every image"
            )
    if isinstance(logits, Detections):
        return [_detection_target(entry, image, i) for i, (entry, image) in enumerate(zip(entries, logits))]
    num_classes = logits.shape[1]
    default = _default_classes(logits) if any(e is None for e in entries) else []
    resolved: list[Target] = []
    for i, entry in enumerate(entries):
        if entry is None or not callable(entry):
            index = default[i] if entry is None else class_index(entry)
            if index is None:
                raise _bad_target(entry)
            entry = _class_target(index, logits)
        category = getattr(entry, "category", None) if getattr(entry, "category_is_class", True) else None
        in_range = isinstance(entry, BinaryTarget) or not isinstance(category, int) or 0 <= category < num_classes
        if not in_range:
            raise TargetError(
                f"target class {category} is out of range: the model has {num_classes} classes (0..{num_classes - 1})"
            )
        if isinstance(entry, SegmentationTarget):
            entry = entry.bind(logits[i], i)
        resolved.append(entry)
    return resolved


def _default_classes(logits: torch.Tensor) -> list[int]:
    """Each image's predicted class: top-1, the side of a single logit, or the class on most pixels."""
    return [int(c) for c in class_summary(logits).argmax(dim=1).tolist()]


def _class_target(index: int, logits: torch.Tensor) -> Target:
    if logits.ndim == 4:
        return SegmentationTarget(index)
    if logits.shape[1] == 1:
        if index > 1:
            raise TargetError(f"target class {index} is out of range: a single-logit (binary) head has classes 0 and 1")
        return BinaryTarget(index)
    return ClassifierOutputTarget(index)


#: what a warning about a zero target adds: a map still comes out (Score-CAM's weights of a constant target
#: are uniform: its map is the channels' mean), but it answers no question about the model
EXPLAINS_NOTHING = "(a map of it explains nothing)"
_READS_NOTHING = (
    "it does not read this model's output (dense (classes, H, W) outputs need SegmentationTarget, "
    "detections BoxScoreTarget)"
)


def _scalar(target: Target, row: Any) -> torch.Tensor:
    given = f"an output of shape {tuple(row.shape)}" if isinstance(row, torch.Tensor) else "a detection dict"
    try:
        value = torch.as_tensor(target(row))
    except (AttributeError, TypeError, KeyError, IndexError) as exc:
        if isinstance(exc, CamscopeError):  # UnknownNameError is a KeyError too
            raise
        # a target written for another kind of output fails inside itself: say which output it was given
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise TargetError(
            f"target {target!r} fails on {given} ({type(exc).__name__}: {reason}): {_READS_NOTHING}"
        ) from exc
    if value.numel() != 1:
        raise TargetError(
            f"target {target!r} gives {tuple(value.shape)} values, not one score, on {given}: " + _READS_NOTHING
        )
    return value.reshape(())


def target_scores(targets: Sequence[Target], logits: Outputs) -> torch.Tensor:
    """Score of each image's target, shape ``(N,)``; ``logits[i]`` belongs to ``targets[i]``.

    Plain ClassifierOutputTarget / SoftmaxTarget batches are scored with one gather.
    """
    kinds = {type(t) for t in targets}
    plain = kinds <= {ClassifierOutputTarget, ClassifierOutputSoftmaxTarget}
    if isinstance(logits, torch.Tensor) and logits.ndim == 2 and len(targets) == logits.shape[0] and plain:
        index = torch.tensor([t.category for t in targets], device=logits.device)  # type: ignore[attr-defined]
        if len(kinds) == 1:
            values = torch.softmax(logits, dim=-1) if ClassifierOutputSoftmaxTarget in kinds else logits
            return values.gather(1, index[:, None] % logits.shape[1])[:, 0]
    return torch.stack([_scalar(t, row) for t, row in zip(targets, logits)])


def repeated_target_scores(target: Target, logits: Outputs) -> torch.Tensor:
    """Score one target on many outputs of the same image (perturbation methods, metrics): ``(M,)``."""
    if isinstance(logits, torch.Tensor) and type(target) in (ClassifierOutputTarget, ClassifierOutputSoftmaxTarget):
        return target(logits)
    if isinstance(logits, torch.Tensor) and type(target) is SegmentationTarget and logits.ndim == 4:
        return target(logits)
    return torch.stack([_scalar(target, row) for row in logits])


# ---------------------------------------------------------------------------- task targets
class BinaryTarget:
    """A single-logit (binary) head: the logit for class 1, its negation for class 0 (pytorch-grad-cam's
    BinaryClassifierOutputTarget)."""

    def __init__(self, category: int) -> None:
        if category not in (0, 1):
            raise TargetError(f"BinaryTarget category must be 0 or 1, got {category!r}")
        self.category = int(category)

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        sign = 1.0 if self.category == 1 else -1.0
        return sign * model_output[..., 0]

    def __repr__(self) -> str:
        return f"BinaryTarget({self.category})"


class MultiLabelTarget:
    """A multi-label head: the sum of the logits of ``categories`` (each an independent yes/no)."""

    def __init__(self, categories: Sequence[int]) -> None:
        indices = [class_index(c) for c in categories]
        if not indices or any(i is None for i in indices):
            raise TargetError(f"MultiLabelTarget needs one or more class indices, got {list(categories)!r}")
        self.categories = [int(i) for i in indices if i is not None]

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        if model_output.shape[-1] <= max(self.categories):
            raise TargetError(
                f"MultiLabelTarget{tuple(self.categories)} is out of range for {model_output.shape[-1]} outputs"
            )
        return model_output[..., self.categories].sum(dim=-1)

    def __repr__(self) -> str:
        return f"MultiLabelTarget({self.categories})"


def _region_mask(region: Any, name: str) -> torch.Tensor:
    mask = torch.as_tensor(np.asarray(region) if not isinstance(region, torch.Tensor) else region)
    if mask.ndim != 2:
        raise TargetError(f"{name} must be a 2-D (H, W) mask, got shape {tuple(mask.shape)}")
    return mask.float()


class SegmentationTarget:
    """Class ``category``'s scores summed over a region of a dense (classes, H, W) output.

    The region is a ``mask`` (H, W) at the output's size (pytorch-grad-cam's SemanticSegmentationTarget
    with the same formula), a ``box`` (x1, y1, x2, y2) in output pixels, or, with neither, the pixels
    where the model predicts the class on the explained image (fixed from the clean output when the
    targets are resolved, as the peer's tutorial does by hand).
    """

    def __init__(self, category: int, mask: Any = None, box: Sequence[float] | None = None) -> None:
        index = class_index(category)
        if index is None:
            raise _bad_target(category)
        if mask is not None and box is not None:
            raise TargetError("SegmentationTarget takes a mask or a box, not both")
        if box is not None and len(box) != 4:
            raise TargetError(f"SegmentationTarget box must be (x1, y1, x2, y2), got {box!r}")
        self.category = index
        self.mask = None if mask is None else _region_mask(mask, "SegmentationTarget mask")
        self.box = None if box is None else tuple(float(v) for v in box)
        self.predicted = False  # True once the region is "where the model predicts the class", fixed

    def region(self, model_output: torch.Tensor) -> torch.Tensor:
        """The (H, W) weight of each pixel of ``model_output`` (K, H, W) or (M, K, H, W)."""
        height, width = model_output.shape[-2:]
        if self.mask is not None:
            if tuple(self.mask.shape) != (height, width):
                raise TargetError(
                    f"the SegmentationTarget mask is {self.mask.shape[0]}x{self.mask.shape[1]} but the model outputs "
                    f"{height}x{width} maps: give a mask at the output's size"
                )
            return self.mask.to(device=model_output.device, dtype=model_output.dtype)
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            ys = torch.arange(height, device=model_output.device)[:, None] + 0.5
            xs = torch.arange(width, device=model_output.device)[None, :] + 0.5
            return ((xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)).to(model_output.dtype)
        clean = model_output if model_output.ndim == 3 else model_output[0]
        return (clean.argmax(dim=0) == self.category).to(model_output.dtype)

    def bind(self, model_output: torch.Tensor, image: int = 0) -> SegmentationTarget:
        """This target with its region fixed from one image's clean output (K, H, W); warns if it is empty."""
        self._check(model_output)
        region = self.region(model_output)
        bound = self
        if self.mask is None and self.box is None:
            bound = SegmentationTarget(self.category, region.detach())
            bound.predicted = True
        if not bool((region != 0).any()):
            where = "is predicted on no pixel" if bound.predicted else "has an empty region"
            warn(f"segmentation class {self.category} {where}: the target is zero {EXPLAINS_NOTHING}", [image])
        return bound

    @property
    def empty(self) -> bool:
        """Whether its region is a mask with no pixel: then it is zero whatever the model outputs."""
        return self.mask is not None and not bool(self.mask.any())

    def _check(self, model_output: torch.Tensor) -> None:
        if not isinstance(model_output, torch.Tensor) or model_output.ndim not in (3, 4):
            shape = tuple(model_output.shape) if isinstance(model_output, torch.Tensor) else type(model_output).__name__
            raise TargetError(
                f"{self!r} reads a dense output (classes, H, W), but this model outputs {shape} per image"
            )
        if self.category >= model_output.shape[-3]:
            raise TargetError(
                f"target class {self.category} is out of range: the model has {model_output.shape[-3]} classes"
            )

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        self._check(model_output)
        return (model_output[..., self.category, :, :] * self.region(model_output)).sum(dim=(-2, -1))

    def __repr__(self) -> str:
        region = "mask" if self.mask is not None else f"box={self.box}" if self.box is not None else "predicted"
        return f"SegmentationTarget({self.category}, {region})"


#: detections scoring at least this are what ``None`` (or a class index) explains on a detector
DETECTION_THRESHOLD = 0.5


class BoxScoreTarget:
    """Detections that match given boxes: for each box, the IoU plus the score of the output box that
    overlaps it most, if that IoU exceeds ``iou_threshold`` and the label matches (pytorch-grad-cam's
    FasterRCNNBoxScoreTarget, same formula); 0 for a box no detection matches.

    ``labels=None``: each box takes the label of the clean detection at it (fixed when the targets
    are resolved), so a box alone says which detection to explain.
    """

    def __init__(self, labels: Sequence[int] | None, bounding_boxes: Any, iou_threshold: float = 0.5) -> None:
        boxes = torch.as_tensor(np.asarray(bounding_boxes, dtype=np.float32)).reshape(-1, 4)
        self.bounding_boxes = boxes
        self.labels = None if labels is None else [int(v) for v in labels]
        if self.labels is not None and len(self.labels) != len(boxes):
            raise TargetError(f"BoxScoreTarget got {len(self.labels)} labels for {len(boxes)} boxes")
        self.iou_threshold = float(iou_threshold)

    def __call__(self, model_outputs: Any) -> torch.Tensor:
        import torchvision

        if not isinstance(model_outputs, dict) or "boxes" not in model_outputs:
            given = (
                f"a {tuple(model_outputs.shape)} tensor per image"
                if isinstance(model_outputs, torch.Tensor)
                else f"a {type(model_outputs).__name__}"
            )
            raise TargetError(
                f"a box target ({self!r}) explains a detector's detections (boxes, labels, scores); this model "
                f"outputs {given}"
            )
        boxes = model_outputs["boxes"]
        output = torch.zeros((), device=boxes.device, dtype=boxes.dtype)
        if len(boxes) == 0 or len(self.bounding_boxes) == 0:
            return output
        ious = torchvision.ops.box_iou(self.bounding_boxes.to(device=boxes.device, dtype=boxes.dtype), boxes)
        best = ious.argmax(dim=1)
        for k in range(len(self.bounding_boxes)):
            index = best[k]
            label_ok = self.labels is None or int(model_outputs["labels"][index]) == self.labels[k]
            if ious[k, index] > self.iou_threshold and label_ok:
                output = output + ious[k, index] + model_outputs["scores"][index]
        return output

    @property
    def empty(self) -> bool:
        """Whether it has no box: then it is zero whatever the detector outputs."""
        return len(self.bounding_boxes) == 0

    def __repr__(self) -> str:
        return f"BoxScoreTarget({len(self.bounding_boxes)} boxes, labels={self.labels})"


def region_target(entry: Any) -> Target | None:
    """The target a metric must score again for a map explained with ``entry``: a segmentation or box
    target, whose region or boxes its class index alone would lose; None where the class says it all."""
    return entry if isinstance(entry, (SegmentationTarget, BoxScoreTarget)) else None


def _detection_target(entry: Any, image: dict[str, torch.Tensor], position: int) -> Target:
    """None / a class index / a BoxScoreTarget without labels → a BoxScoreTarget fixed on ``image``'s detections."""
    if isinstance(entry, BoxScoreTarget) and entry.labels is not None:
        _warn_if_unmatched(entry, image, position)
        return entry
    if callable(entry) and not isinstance(entry, BoxScoreTarget):
        chosen: Target = entry
        return chosen
    if isinstance(entry, BoxScoreTarget):
        boxes, labels = image["boxes"].detach(), image["labels"].detach()
        if len(boxes) == 0:
            warn(f"the detector found nothing: the box target is zero {EXPLAINS_NOTHING}", [position])
            return BoxScoreTarget([0] * len(entry.bounding_boxes), entry.bounding_boxes, entry.iou_threshold)
        import torchvision

        ious = torchvision.ops.box_iou(entry.bounding_boxes.to(boxes.device, boxes.dtype), boxes)
        best = ious.argmax(dim=1)
        if bool((ious.gather(1, best[:, None]) <= entry.iou_threshold).any()):
            warn("no detection overlaps the given box enough (IoU > threshold): its target is zero", [position])
        return BoxScoreTarget([int(labels[i]) for i in best], entry.bounding_boxes, entry.iou_threshold)
    index = None if entry is None else class_index(entry)
    if entry is not None and index is None:
        raise _bad_target(entry)
    target = confident_detections(image, index)
    if target.empty:
        what = ("" if index is None else f"of class {index} ") + f"scoring >= {DETECTION_THRESHOLD}"
        warn(f"no detection {what}: the target is zero {EXPLAINS_NOTHING}", [position])
    return target


def confident_detections(image: Mapping[str, torch.Tensor], label: int | None = None) -> BoxScoreTarget:
    """One image's detections scoring at least :data:`DETECTION_THRESHOLD` (of class ``label`` if given), as the
    box target a detector is explained with by default."""
    keep = image["scores"].detach() >= DETECTION_THRESHOLD
    if label is not None:
        keep &= image["labels"].detach() == label
    return BoxScoreTarget(image["labels"].detach()[keep].tolist(), image["boxes"].detach()[keep].cpu().numpy(), 0.5)


def _warn_if_unmatched(target: BoxScoreTarget, image: dict[str, torch.Tensor], position: int) -> None:
    """A box target with its labels given is zero when it has no box or no detection matches one (the peer's
    tutorial builds it from the detections above a threshold, which may be none): say so, as for None."""
    if len(target.bounding_boxes) == 0:
        warn(f"the box target has no boxes (no detection was kept?): it is zero {EXPLAINS_NOTHING}", [position])
        return
    with torch.no_grad():
        score = float(target({key: value.detach() for key, value in image.items()}))
    if score == 0.0:
        what = "the detector found nothing" if len(image["boxes"]) == 0 else "no detection matches its boxes and labels"
        warn(f"{what}: the box target is zero {EXPLAINS_NOTHING}", [position])


# ---------------------------------------------------------------------------- label-free targets
def _embedding_rows(embeddings: Any, name: str) -> torch.Tensor:
    rows = torch.as_tensor(embeddings).detach()
    if rows.ndim == 1:
        rows = rows[None]
    if rows.ndim != 2 or rows.shape[0] == 0 or not rows.is_floating_point():
        raise TargetError(f"{name} must be a float embedding (D,) or a non-empty stack (M, D), got {tuple(rows.shape)}")
    return rows


def _embedding(output: torch.Tensor, reference: torch.Tensor, name: str) -> torch.Tensor:
    if output.shape[-1] != reference.shape[-1]:
        raise TargetError(
            f"{name} has {reference.shape[-1]} dimensions but the model outputs {output.shape[-1]}: "
            "compute it with the same backbone (load_model(name, head=False))"
        )
    return reference.to(device=output.device, dtype=output.dtype)


class SimilarityTarget:
    """Similarity of the model's embedding to a reference embedding (label-free explanation).

    ``kind="cosine"``: cos(f(x̃), r) — pytorch-grad-cam's "pixel attribution for embeddings", e.g. r the
    embedding of another image or a concept. ``kind="dot"``: ⟨f(x̃), r⟩ — Label-Free XAI (Crabbé & van
    der Schaar 2022); use it to explain an image by its *own* embedding r = f(x): the cosine's gradient
    vanishes at x̃ = x (the cosine is maximal there), so a gradient map of an image's cosine to itself is
    all zeros.
    """

    def __init__(self, reference_embedding: Any, kind: str = "cosine") -> None:
        if kind not in ("cosine", "dot"):
            raise TargetError(f"SimilarityTarget kind must be 'cosine' or 'dot', got {kind!r}")
        rows = _embedding_rows(reference_embedding, "reference_embedding")
        if rows.shape[0] != 1:
            raise TargetError(f"reference_embedding must be one embedding, got {rows.shape[0]}")
        self.reference = rows[0]
        self.kind = kind

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        reference = _embedding(model_output, self.reference, "reference_embedding")
        if self.kind == "dot":
            return (model_output * reference).sum(dim=-1)
        return torch.nn.functional.cosine_similarity(model_output, reference.expand_as(model_output), dim=-1)

    def __repr__(self) -> str:
        return f"SimilarityTarget(dim={self.reference.shape[0]}, kind={self.kind!r})"


class CorpusTarget:
    """COCOA (Lin et al., 2023): mean cosine to a corpus minus mean cosine to a foil (if given),

    g(x̃) = mean_{c ∈ corpus} cos(f(x̃), f(c)) − mean_{r ∈ foil} cos(f(x̃), f(r)).
    """

    def __init__(self, corpus: Any, foil: Any = None) -> None:
        self.corpus = _embedding_rows(corpus, "corpus")
        self.foil = None if foil is None else _embedding_rows(foil, "foil")

    @staticmethod
    def _mean_cosine(output: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        unit = torch.nn.functional.normalize(rows, dim=-1)
        return (torch.nn.functional.normalize(output, dim=-1) @ unit.T).mean(dim=-1)

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        score = self._mean_cosine(model_output, _embedding(model_output, self.corpus, "corpus"))
        if self.foil is not None:
            score = score - self._mean_cosine(model_output, _embedding(model_output, self.foil, "foil"))
        return score

    def __repr__(self) -> str:
        foil = 0 if self.foil is None else self.foil.shape[0]
        return f"CorpusTarget(corpus={self.corpus.shape[0]}, foil={foil})"


# what a curve's y values are (score_name): the two a sweep's rows can tell apart
CLASS_PROBABILITY, SIMILARITY = "target probability", "similarity"


def score_name(output: Any, targets: Any = None) -> str:
    """What the metrics score on a model whose clean output is ``output`` (a deletion curve's y axis): the
    similarity for label-free targets, a dense (classes, H, W) output's class score summed over the region,
    a detector's matched box IoU + score, else the target class's probability."""
    items = targets if isinstance(targets, (list, tuple)) else [targets]
    if any(isinstance(t, (SimilarityTarget, CorpusTarget)) for t in items):
        return SIMILARITY
    if isinstance(output, Detections):
        return "matched detection's IoU + score"
    if isinstance(output, torch.Tensor) and output.ndim == 4:
        return "class score summed over the region"
    return CLASS_PROBABILITY


def own_embedding_targets(embeddings: torch.Tensor) -> list[SimilarityTarget]:
    """One ``SimilarityTarget(f(x_i), "dot")`` per image: explain each image by its own embedding."""
    return [SimilarityTarget(row, kind="dot") for row in embeddings.detach()]


# ---------------------------------------------------------------------------- targets of newer CAMs
class ClassifierOutputReST:
    """ReST (ShapleyCAM, Cai et al. 2025): the logit minus the cross-entropy, y_c − CE(y, c).

    It uses the logit and the softmax together, so its Hessian is not zero even for a linear head.
    """

    def __init__(self, category: int) -> None:
        self.category = int(category)

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        log_probs = torch.log_softmax(model_output, dim=-1)[..., self.category]
        return model_output[..., self.category] + log_probs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.category})"


class FinerWeightedTarget:
    """Finer-CAM (Zhang et al. 2025) as pytorch-grad-cam 1.5.7 defines it:

    Σ_j p_j (y_c − α·y_j) / (Σ_j p_j + 1e-9) over the comparison classes j, p = softmax(y).
    (torchcam's FinerCAM differs: γ = 0.6 and an unweighted mean.)
    """

    def __init__(self, main_category: int, comparison_categories: Sequence[int], alpha: float = 1.0) -> None:
        if not comparison_categories:
            raise TargetError("FinerWeightedTarget needs at least one comparison category")
        self.category = int(main_category)
        self.comparison_categories = [int(c) for c in comparison_categories]
        self.alpha = float(alpha)

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(model_output, dim=-1)
        main = model_output[..., self.category]
        others = self.comparison_categories
        weights = probs[..., others]
        numerator = (weights * (main[..., None] - self.alpha * model_output[..., others])).sum(dim=-1)
        return numerator / (weights.sum(dim=-1) + 1e-9)

    def __repr__(self) -> str:
        return f"FinerWeightedTarget({self.category}, {self.comparison_categories}, alpha={self.alpha})"


# ---------------------------------------------------------------------------- pytorch-grad-cam's other targets
#: pytorch-grad-cam's name for :class:`BinaryTarget`
BinaryClassifierOutputTarget = BinaryTarget


class SoftmaxOutputTarget:
    """Every class's softmax probability (a vector: for metrics that score all classes, not for a CAM)."""

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model_output, dim=-1)


class RawScoresOutputTarget:
    """The raw output itself (a vector: for metrics that score all classes, not for a CAM)."""

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return model_output
