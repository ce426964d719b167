"""Output adapters: read whatever a model returns into the one thing targets consume.

Classifiers return a tensor, Hugging Face models an object with ``.logits``, torchvision
segmentation models a dict whose ``"out"`` holds (N, classes, H, W) scores, torchvision detectors a
list with one ``{"boxes", "labels", "scores"}`` dict per image. :func:`read_output` turns each into
either a tensor whose first dimension is the batch (scores (N, K), dense scores (N, K, H, W),
embeddings (N, D)) or :class:`Detections`; a target is then called on one image's part of it (a row,
a (K, H, W) map or one detection dict), so methods never need to know which task a model solves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from camscope.core.errors import TargetError

DETECTION_KEYS = ("boxes", "labels", "scores")


class Detections(Sequence[dict[str, torch.Tensor]]):
    """One image's detections per item: ``{"boxes": (D, 4) x1y1x2y2, "labels": (D,), "scores": (D,)}``."""

    def __init__(self, images: Sequence[Mapping[str, torch.Tensor]]) -> None:
        self.images = [dict(image) for image in images]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return self.images[index]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return iter(self.images)

    @property
    def shape(self) -> tuple[int]:
        """``(N,)``: the batch size, where code asks a tensor for ``shape[0]``."""
        return (len(self.images),)

    def detach(self) -> Detections:
        return Detections([{k: v.detach() for k, v in image.items()} for image in self.images])

    def __repr__(self) -> str:
        return f"Detections({[len(image['boxes']) for image in self.images]} boxes)"


Outputs = torch.Tensor | Detections


def _is_detection_list(output: Any) -> bool:
    return (
        isinstance(output, (list, tuple))
        and len(output) > 0
        and all(isinstance(item, Mapping) and all(k in item for k in DETECTION_KEYS) for item in output)
    )


def read_output(output: Any) -> Outputs:
    """The part of a model output targets read (see the module docstring); TargetError if none is found."""
    if isinstance(output, (torch.Tensor, Detections)):  # a tensor, or outputs already read
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if _is_detection_list(output):
        return Detections(output)
    if isinstance(output, Mapping):
        for key in ("out", "logits"):
            if isinstance(output.get(key), torch.Tensor):
                entry: torch.Tensor = output[key]
                return entry
        keys = ", ".join(map(repr, list(output)[:6]))
        raise TargetError(
            f"cannot find scores in a model output dict with keys {keys}: expected 'out' (segmentation), "
            "'logits', or a list of detection dicts (boxes, labels, scores); wrap the model to return a tensor"
        )
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TargetError(
        f"cannot find class scores in a model output of type {type(output).__name__}: "
        "expected a tensor, a tuple whose first item is a tensor, an object with .logits, a dict with 'out', "
        "or a list of detection dicts"
    )


def read_scores(output: Any, what: str = "this") -> torch.Tensor:
    """:func:`read_output` for code that needs a tensor (metrics, tails): detections are refused by name."""
    outputs = read_output(output)
    if isinstance(outputs, Detections):
        raise TargetError(f"{what} needs a model whose output is a score tensor; a detector's boxes are not supported")
    return outputs


def nonfinite_images(outputs: Outputs) -> torch.Tensor:
    """(N,) bool: images whose outputs hold NaN or infinite values."""
    if isinstance(outputs, Detections):
        flags = [
            bool((~torch.isfinite(image["scores"].float())).any() or (~torch.isfinite(image["boxes"].float())).any())
            for image in outputs
        ]
        return torch.tensor(flags, dtype=torch.bool)
    return (~torch.isfinite(outputs.float())).flatten(1).any(1)


def class_summary(outputs: Outputs) -> torch.Tensor:
    """(N, K) per-class values in [0, 1] for a "top classes" list.

    Scores: the softmax (a single logit: its sigmoid as P(class 1) beside P(class 0)). Dense
    scores: the fraction of pixels where each class is predicted. Detections: each label's best
    detection score (0 where a label is not detected).
    """
    if isinstance(outputs, Detections):
        labels = [image["labels"] for image in outputs]
        width = max([int(label.max()) + 1 for label in labels if label.numel()] or [1])
        summary = torch.zeros(len(outputs), width)
        for i, image in enumerate(outputs):
            if image["labels"].numel():
                summary[i].scatter_reduce_(0, image["labels"].long().cpu(), image["scores"].float().cpu(), "amax")
        return summary
    values = outputs.float()
    if values.ndim == 4:
        predicted = values.argmax(dim=1).flatten(1)
        counts = torch.zeros(values.shape[0], values.shape[1], device=values.device)
        counts.scatter_add_(1, predicted, torch.ones_like(predicted, dtype=counts.dtype))
        return counts / predicted.shape[1]
    if values.ndim == 2 and values.shape[1] == 1:
        positive = torch.sigmoid(values)
        return torch.cat([1 - positive, positive], dim=1)
    return torch.softmax(values.flatten(1), dim=-1)
