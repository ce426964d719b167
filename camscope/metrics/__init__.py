"""Quantitative evaluation of attribution maps: is the map faithful to the model, does it localize?

Each metric takes ``(model, inputs (N, C, H, W) normalised, maps (N, H, W) in [0, 1], targets)`` (the
localization metrics take ``(maps, ground_truth)``), batches its forward passes (``batch_size``), runs
them under ``torch.inference_mode()`` and returns per-image values — and curves where the metric has
them. Targets follow :mod:`camscope.targets`: None (top-1 on the clean image), an int, a callable, or
one per image.

Names usable from the CLI and configs are in :data:`METRICS` / :func:`get_metric`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from camscope.errors import MetricInputError, UnknownNameError
from camscope.metrics._common import IMAGENET_MEAN, IMAGENET_STD
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
from camscope.metrics.road import RoadResult, road
from camscope.metrics.sanity import SanityResult, randomization_sanity

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "METRICS",
    "AverageDropResult",
    "ConfidenceChangeResult",
    "CurveResult",
    "LocalizationResult",
    "Metric",
    "RoadResult",
    "SanityResult",
    "VocAnnotation",
    "average_drop_increase",
    "boxes_to_mask",
    "confidence_change",
    "deletion",
    "energy_pointing_game",
    "get_metric",
    "ground_truth_masks",
    "insertion",
    "load_voc_boxes",
    "pointing_game",
    "randomization_sanity",
    "relevance_mass",
    "relevance_rank",
    "road",
    "transform_boxes",
    "transform_mask",
]


@dataclass(frozen=True)
class Metric:
    """A registered metric with one calling convention for the CLI and sweeps.

    ``metric(model, inputs, maps, targets, ground_truth=..., **kwargs)`` returns the metric's result,
    whose ``summary()`` maps column names to per-image values (N,).
    """

    name: str
    func: Callable[..., Any]
    needs_ground_truth: bool = False
    description: str = ""

    def __call__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        maps: np.ndarray | torch.Tensor,
        targets: Any = None,
        *,
        ground_truth: Any = None,
        **kwargs: Any,
    ) -> Any:
        if self.needs_ground_truth:
            if ground_truth is None:
                raise MetricInputError(f"metric {self.name!r} needs ground truth (boxes or masks)")
            return self.func(maps, ground_truth, **kwargs)
        return self.func(model, inputs, maps, targets, **kwargs)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("deletion", deletion, description="RISE deletion AUC (lower is better)"),
        Metric("insertion", insertion, description="RISE insertion AUC (higher is better)"),
        Metric("avgdrop", average_drop_increase, description="Grad-CAM++ average drop / increase in %"),
        Metric("confidence_change", confidence_change, description="pytorch-grad-cam's CamMult change"),
        Metric("road", road, description="ROAD MoRF / LeRF / combined"),
        Metric("pointing", pointing_game, True, "pointing game hit (tolerance 15 px)"),
        Metric("energy_pointing", energy_pointing_game, True, "energy inside the boxes"),
        Metric("relevance_mass", relevance_mass, True, "relevance mass accuracy"),
        Metric("relevance_rank", relevance_rank, True, "relevance rank accuracy"),
    )
}


def get_metric(name: str) -> Metric:
    """The registered metric called ``name`` (see :data:`METRICS`)."""
    key = name.strip().lower().replace("-", "_")
    if key not in METRICS:
        raise UnknownNameError(f"unknown metric {name!r}: choose from {', '.join(METRICS)}")
    return METRICS[key]
