"""Quantitative evaluation of attribution maps: is the map faithful to the model, does it localize?

Each metric takes ``(model, inputs (N, C, H, W) normalised, maps (N, H, W) in [0, 1], targets)`` (the
localization metrics take ``(maps, ground_truth)``), batches its forward passes (``batch_size``), runs
them under ``torch.inference_mode()`` and returns per-image values — and curves where the metric has
them. Targets follow :mod:`camscope.targets`: None (top-1 on the clean image), an int, a callable, or
one per image.

Names usable from the CLI and configs are in :data:`METRICS` / :func:`get_metric`; each registered
metric declares its parameters, direction and columns (:mod:`camscope.metrics.registry`).
"""

from __future__ import annotations

from camscope.metrics._common import IMAGENET_MEAN, IMAGENET_STD, ForwardMemo, shared_forwards
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
    energy_pointing_game,
    pointing_game,
    relevance_mass,
    relevance_rank,
)
from camscope.metrics.perturbation import (
    AverageDropResult,
    ConfidenceChangeResult,
    CurveResult,
    average_drop_increase,
    confidence_change,
    deletion,
    insertion,
)
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
    "LocalizationResult",
    "Metric",
    "RoadResult",
    "RobustnessResult",
    "SanityResult",
    "VocAnnotation",
    "average_drop_increase",
    "avg_sensitivity",
    "boxes_to_mask",
    "confidence_change",
    "deletion",
    "energy_pointing_game",
    "faithfulness_correlation",
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
    "negative_perturbation",
    "pixel_flipping",
    "pointing_game",
    "positive_perturbation",
    "randomization_sanity",
    "region_perturbation",
    "register_metric",
    "relevance_mass",
    "relevance_rank",
    "road",
    "selectivity",
    "shared_forwards",
    "transform_boxes",
    "transform_mask",
    "unregister_metric",
]


REMOVED = "fraction of pixels removed"
for _curve_metric, _higher, _x in ((deletion, False, REMOVED), (insertion, True, "fraction of pixels inserted")):
    _name = _curve_metric.__name__
    register_metric(
        _name,
        _curve_metric,
        [Column(f"{_name}_auc", higher_is_better=_higher, curve=_name, curve_x=_x)],
        params=("step", "substrate", "batch_size"),
        image_stats=True,
        description=f"RISE {_name} AUC ({'higher' if _higher else 'lower'} is better)",
    )
register_metric(
    "avgdrop",
    average_drop_increase,
    [Column("avg_drop", higher_is_better=False), Column("increase", higher_is_better=True)],
    params=("space", "batch_size"),
    image_stats=True,
    description="Grad-CAM++ average drop / increase in %",
)
register_metric(
    "confidence_change",
    confidence_change,
    [Column("confidence_change", higher_is_better=True)],
    params=("batch_size",),
    description="pytorch-grad-cam's CamMult change",
)
register_metric(
    "road",
    road,
    [
        Column("road_morf", higher_is_better=False, curve="road_morf", curve_x=REMOVED + " (imputed)"),
        Column("road_lerf", higher_is_better=True, curve="road_lerf", curve_x=REMOVED + " (imputed)"),
        Column("road_combined", higher_is_better=True),
    ],
    params=("percentages", "orders", "compat", "noise", "seed", "batch_size", "workers"),
    image_stats=True,
    description="ROAD MoRF / LeRF / combined",
)
for _name, _func, _params, _description in (
    ("pointing", pointing_game, ("tolerance",), "pointing game hit (tolerance 15 px)"),
    ("energy_pointing", energy_pointing_game, (), "energy inside the boxes"),
    ("relevance_mass", relevance_mass, (), "relevance mass accuracy"),
    ("relevance_rank", relevance_rank, (), "relevance rank accuracy"),
):
    register_metric(
        _name, _func, [Column(_name, True)], params=_params, needs_ground_truth=True, description=_description
    )
