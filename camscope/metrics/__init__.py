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
from camscope.metrics.faithfulness import (
    FaithfulnessResult,
    faithfulness_correlation,
    infidelity,
    irof,
    monotonicity_correlation,
    negative_perturbation,
    pixel_flipping,
    positive_perturbation,
    region_perturbation,
    selectivity,
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
from camscope.metrics.robustness import (
    RobustnessResult,
    avg_sensitivity,
    local_lipschitz_estimate,
    max_sensitivity,
)
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
    "FaithfulnessResult",
    "ForwardMemo",
    "ImageScores",
    "LocalizationResult",
    "Metric",
    "RandomisationResult",
    "RoadResult",
    "RobustnessResult",
    "SanityResult",
    "SegmentationResult",
    "VocAnnotation",
    "attribution_localisation",
    "auc",
    "average_drop_increase",
    "avg_sensitivity",
    "boxes_to_mask",
    "complexity",
    "confidence_change",
    "deletion",
    "effective_complexity",
    "efficient_mprt",
    "energy_pointing_game",
    "faithfulness_correlation",
    "focus",
    "get_metric",
    "ground_truth_masks",
    "higher_is_better",
    "infidelity",
    "insertion",
    "irof",
    "load_voc_boxes",
    "local_lipschitz_estimate",
    "max_sensitivity",
    "metric_names",
    "monotonicity_correlation",
    "mprt",
    "negative_perturbation",
    "pixel_flipping",
    "pointing_game",
    "positive_perturbation",
    "random_logit",
    "randomization_sanity",
    "region_perturbation",
    "register_metric",
    "relevance_mass",
    "relevance_rank",
    "road",
    "segmentation",
    "selectivity",
    "shared_forwards",
    "smooth_mprt",
    "sparseness",
    "top_k_intersection",
    "transform_boxes",
    "transform_mask",
    "unregister_metric",
]
