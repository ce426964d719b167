"""pytorch-grad-cam's CamMult metrics: the image multiplied by its map, the target's score before and after.

The product is taken on the normalised tensor (:func:`camscope.metrics.deletion.explanation_images`,
``space="normalized"``), as :func:`camscope.metrics.deletion.confidence_change` computes it;
these classes give it pytorch-grad-cam's call shape, ``metric(input_tensor, cams, targets, model)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from camscope.metrics.deletion import explanation_images
from camscope.metrics.perturbation_confidence import PerturbationConfidenceMetric


def multiply_tensor_with_cam(input_tensor: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """One image (C, H, W) times its map (H, W)."""
    return input_tensor * cam


class CamMultImageConfidenceChange(PerturbationConfidenceMetric):
    """``target(model(x ⊙ map)) − target(model(x))`` per image (float32)."""

    def __init__(self) -> None:
        super().__init__(multiply_tensor_with_cam)

    def perturb(self, input_tensor: torch.Tensor, cams: np.ndarray) -> torch.Tensor:
        maps = torch.from_numpy(np.float32(cams))
        return explanation_images(input_tensor, maps, "normalized")


class DropInConfidence(CamMultImageConfidenceChange):
    """``max(0, −change)``: how much the score falls when only the map's region is kept."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return np.maximum(-super().__call__(*args, **kwargs), 0)


class IncreaseInConfidence(CamMultImageConfidenceChange):
    """``1.0`` where the score rises when only the map's region is kept, else ``0.0``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return np.float32(super().__call__(*args, **kwargs) > 0)
