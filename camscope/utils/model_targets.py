"""``pytorch_grad_cam.utils.model_targets`` → camscope's targets (callables on one image's model output).

The segmentation and detection targets are thin definitions on pytorch-grad-cam's output formats (a
(classes, H, W) score map; torchvision's detection dicts), kept here until camscope's task adapters own them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torchvision

from camscope.core.targets import (
    BinaryClassifierOutputTarget,
    ClassifierOutputReST,
    ClassifierOutputSoftmaxTarget,
    ClassifierOutputTarget,
    FinerWeightedTarget,
    RawScoresOutputTarget,
    SoftmaxOutputTarget,
)


class SemanticSegmentationTarget:
    """The sum of class ``category``'s scores over the pixels of ``mask`` (H, W) of a (classes, H, W) output."""

    def __init__(self, category: int, mask: np.ndarray) -> None:
        self.category = category
        self.mask = torch.from_numpy(np.asarray(mask))

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return (model_output[self.category, :, :] * self.mask.to(model_output.device)).sum()


class FasterRCNNBoxScoreTarget:
    """For each reference box (with its label): IoU + score of the best-overlapping detection of the same
    label, if the IoU exceeds ``iou_threshold``; the sum over reference boxes (0 when nothing matches)."""

    def __init__(self, labels: Sequence[Any], bounding_boxes: Sequence[Any], iou_threshold: float = 0.5) -> None:
        self.labels = labels
        self.bounding_boxes = bounding_boxes
        self.iou_threshold = iou_threshold

    def __call__(self, model_outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        boxes = model_outputs["boxes"]
        output = torch.zeros(1, device=boxes.device, dtype=boxes.dtype)
        if len(boxes) == 0:
            return output
        for box, label in zip(self.bounding_boxes, self.labels):
            reference = torch.as_tensor(np.asarray(box)[None, :], device=boxes.device, dtype=boxes.dtype)
            ious = torchvision.ops.box_iou(reference, boxes)
            index = ious.argmax()
            if ious[0, index] > self.iou_threshold and model_outputs["labels"][index] == label:
                output = output + ious[0, index] + model_outputs["scores"][index]
        return output


__all__ = [
    "BinaryClassifierOutputTarget",
    "ClassifierOutputReST",
    "ClassifierOutputSoftmaxTarget",
    "ClassifierOutputTarget",
    "FasterRCNNBoxScoreTarget",
    "FinerWeightedTarget",
    "RawScoresOutputTarget",
    "SemanticSegmentationTarget",
    "SoftmaxOutputTarget",
]
