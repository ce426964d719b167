"""``pytorch_grad_cam.utils.model_targets`` → camscope's targets (callables on one image's model output).

The segmentation and detection targets are camscope's task targets (:mod:`camscope.core.targets`), which
read a (classes, H, W) score map and torchvision's detection dicts as pytorch-grad-cam's do.
"""

from __future__ import annotations

from camscope.core.targets import (
    BinaryClassifierOutputTarget,
    BoxScoreTarget,
    ClassifierOutputReST,
    ClassifierOutputSoftmaxTarget,
    ClassifierOutputTarget,
    FinerWeightedTarget,
    RawScoresOutputTarget,
    SegmentationTarget,
    SoftmaxOutputTarget,
)

#: pytorch-grad-cam's names for the task targets: a class over a region, a detection's box score
SemanticSegmentationTarget = SegmentationTarget
FasterRCNNBoxScoreTarget = BoxScoreTarget

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
