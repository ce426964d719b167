"""The segmentation protocol: the map, thresholded, as a foreground/background segmentation of the
object, scored against its true mask.

As Chefer, Gur & Wolf ("Transformer Interpretability Beyond Attention Visualization", CVPR 2021) score
maps on ImageNet-Segmentation (their ``imagenet_seg_eval.py``), per image:

* the map is min-max scaled to [0, 1] and thresholded at its mean (or at ``threshold``): pixels
  above it are foreground;
* **pixel accuracy** — the fraction of pixels labelled correctly;
* **mIoU** — the mean of the foreground IoU and the background IoU (a class absent from both the
  prediction and the truth counts as IoU 1: nothing to get wrong);
* **AP** — average precision (``sklearn.metrics.average_precision_score``) of the unthresholded scores
  of both classes, ``(1 − map, map)``, against their one-hot truth, pooled in one ranking per image;
  its mean over images is the protocol's mAP.

Chefer et al. pool the intersections and unions over the whole data set before dividing; the per-image
mIoU here averages per image (a sweep aggregates rows afterwards), so its mean weights images equally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from camscope.core.errors import MetricInputError
from camscope.metrics._common import ArrayLike, check_maps
from camscope.metrics.groundtruth import GroundTruth, ground_truth_masks
from camscope.metrics.registry import Column, register_metric


@dataclass
class SegmentationResult:
    """Per-image mIoU, pixel accuracy and AP (N,) of the thresholded map against the true mask."""

    miou: np.ndarray
    pixel_accuracy: np.ndarray
    ap: np.ndarray

    def summary(self) -> dict[str, np.ndarray]:
        return {
            "segmentation_miou": self.miou,
            "segmentation_pixel_accuracy": self.pixel_accuracy,
            "segmentation_ap": self.ap,
        }


def segmentation(maps: ArrayLike, ground_truth: GroundTruth, *, threshold: float | None = None) -> SegmentationResult:
    """Score each map as a segmentation of its ground truth (see the module doc); ``threshold`` in
    [0, 1] on the min-max scaled map, None for each map's mean."""
    if threshold is not None and not 0 <= threshold <= 1:
        raise MetricInputError(
            f"segmentation: threshold must be in [0, 1] (the map scaled to [0, 1]) or None, got {threshold}"
        )
    m = check_maps(maps, keep_device=True, dtype=torch.float64)
    n, h, w = m.shape
    truth = torch.from_numpy(ground_truth_masks(ground_truth, n, h, w).reshape(n, -1)).to(m.device)
    r = m.reshape(n, -1)
    low, high = r.amin(1, keepdim=True), r.amax(1, keepdim=True)
    r = (r - low) / torch.where(high > low, high - low, torch.ones_like(high))
    cut = r.mean(1, keepdim=True) if threshold is None else torch.full_like(low, threshold)
    fg = r > cut
    accuracy = (fg == truth).double().mean(1)
    ious = [_iou(fg, truth), _iou(~fg, ~truth)]
    miou = (ious[0] + ious[1]) / 2
    ap = average_precision(torch.cat([1 - r, r], dim=1), torch.cat([~truth, truth], dim=1))
    return SegmentationResult(miou.cpu().numpy(), accuracy.cpu().numpy(), ap.cpu().numpy())


def _iou(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    inter = (pred & truth).sum(1).double()
    union = (pred | truth).sum(1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def average_precision(scores: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Average precision of each row, as ``sklearn.metrics.average_precision_score``: ``Σ_n (R_n −
    R_{n−1}) P_n`` over the distinct scores, highest first. Each positive adds the precision at the
    end of its group of tied scores, found by ``searchsorted`` (batched, no per-row loop)."""
    order = scores.argsort(dim=1, descending=True)
    ranked = scores.gather(1, order)
    hits = positive.gather(1, order).double()
    true_positives = hits.cumsum(1)
    descending = (-ranked).contiguous()
    group_end = torch.searchsorted(descending, descending, right=True) - 1
    precision = true_positives.gather(1, group_end) / (group_end + 1)
    return (hits * precision).sum(1) / hits.sum(1)


register_metric(
    "segmentation",
    segmentation,
    [
        Column("segmentation_miou", higher_is_better=True),
        Column("segmentation_pixel_accuracy", higher_is_better=True),
        Column("segmentation_ap", higher_is_better=True),
    ],
    params=("threshold",),
    needs_ground_truth=True,
    description="thresholded map as a segmentation: mIoU, pixel accuracy, AP (Chefer et al. 2021)",
)
