"""Quantitative evaluation of attribution maps: is the map faithful to the model, does it localize?

Each metric takes ``(model, inputs (N, C, H, W) normalised, maps (N, H, W) in [0, 1], targets)`` (the
localization metrics take ``(maps, ground_truth)``), batches its forward passes (``batch_size``), runs
them under ``torch.inference_mode()`` and returns per-image values — and curves where the metric has
them. Targets follow :mod:`camscope.core.targets`: None (top-1 on the clean image), an int, a callable, or
one per image.

Names usable from the CLI and configs are in :data:`METRICS` / :func:`get_metric`; each registered
metric declares its parameters, direction and columns (:mod:`camscope.metrics.registry`).
"""

from __future__ import annotations

from camscope.metrics._common import IMAGENET_MEAN, IMAGENET_STD, ForwardMemo, ImageScores, shared_forwards
from camscope.metrics.complexity import complexity, effective_complexity, sparseness
from camscope.metrics.deletion import (
    AverageDropResult,
    ConfidenceChangeResult,
    CurveResult,
    average_drop_increase,
    confidence_change,
    deletion,
    insertion,
)
from camscope.metrics.groundtruth import (
    VocAnnotation,
    boxes_to_mask,
    ground_truth_masks,
    load_voc_boxes,
    transform_boxes,
    transform_mask,
)
from camscope.metrics.localization import (
    LocalizationResult,
    attribution_localisation,
    auc,
    energy_pointing_game,
    focus,
    pointing_game,
    relevance_mass,
    relevance_rank,
    top_k_intersection,
)
from camscope.metrics.randomisation import RandomisationResult, efficient_mprt, mprt, random_logit, smooth_mprt
from camscope.metrics.registry import (
    METRICS,
    Column,
    Metric,
    get_metric,
    higher_is_better,
    metric_names,
    register_metric,
    unregister_metric,
)
from camscope.metrics.road import RoadResult, road
from camscope.metrics.sanity import SanityResult, randomization_sanity
from camscope.metrics.segmentation import SegmentationResult, segmentation

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "METRICS",
    "AverageDropResult",
    "Column",
    "ConfidenceChangeResult",
    "CurveResult",
    "ForwardMemo",
    "ImageScores",
    "LocalizationResult",
    "Metric",
    "RandomisationResult",
    "RoadResult",
    "SanityResult",
    "SegmentationResult",
    "VocAnnotation",
    "attribution_localisation",
    "auc",
    "average_drop_increase",
    "boxes_to_mask",
    "complexity",
    "confidence_change",
    "deletion",
    "effective_complexity",
    "efficient_mprt",
    "energy_pointing_game",
    "focus",
    "get_metric",
    "ground_truth_masks",
    "higher_is_better",
    "insertion",
    "load_voc_boxes",
    "metric_names",
    "mprt",
    "pointing_game",
    "random_logit",
    "randomization_sanity",
    "register_metric",
    "relevance_mass",
    "relevance_rank",
    "road",
    "segmentation",
    "shared_forwards",
    "smooth_mprt",
    "sparseness",
    "top_k_intersection",
    "transform_boxes",
    "transform_mask",
    "unregister_metric",
]
