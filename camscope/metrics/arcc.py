"""ARCC (pytorch-grad-cam 1.5.7): the harmonic mean of Coherency, 1 − Complexity and ROAD.

- Complexity (Poppi et al., 2021): the map's L1 norm per pixel, ``mean |map|`` (lower: a sparser map).
- Coherency (ibid.): ``(ρ + 1) / 2`` with ρ the Pearson correlation between the map and the map the
  method gives for the image multiplied by that map (an explanation should explain itself).
- ARCC = 3 / (1/Coherency + 1/(1 − Complexity) + 1/ROAD'), ROAD' = clip(2 · ROADCombined, 0, 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from camscope.core.targets import TargetSpec
from camscope.methods.base import BaseCAM
from camscope.metrics.perturbation_confidence import maps_array
from camscope.metrics.road import ROADCombined

CamMethod = BaseCAM | Callable[..., np.ndarray]

__all__ = ["ARCC", "BaseCAM", "Coherency", "Complexity", "ROADCombined", "batch_pearson_coherency"]


def batch_pearson_coherency(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Pearson correlation of each pair of maps ``A[i]``, ``B[i]`` (ε = 1e-8 in the denominator)."""
    x = A.reshape(A.shape[0], -1).astype(np.float64)
    y = B.reshape(B.shape[0], -1).astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    dof = x.shape[1] - 1
    cov = (x * y).sum(axis=1) / dof
    rho: np.ndarray = cov / (np.sqrt((x**2).sum(axis=1) / dof) * np.sqrt((y**2).sum(axis=1) / dof) + 1e-8)
    return rho


class Complexity:
    """``mean |map|`` per image, in [0, 1] for maps in [0, 1]."""

    def __call__(self, grayscale_cams: np.ndarray) -> np.ndarray:
        flat = np.asarray(grayscale_cams).reshape(len(grayscale_cams), -1)
        complexity: np.ndarray = np.abs(flat).sum(axis=1) / flat.shape[1]
        return complexity


class Coherency:
    """``(ρ(map, base_method(x ⊙ map)) + 1) / 2`` per image."""

    def __call__(
        self,
        input_tensor: torch.Tensor,
        grayscale_cams: np.ndarray,
        targets: TargetSpec,
        model: nn.Module,
        base_method: CamMethod,
    ) -> np.ndarray:
        maps = torch.from_numpy(np.float32(grayscale_cams)).unsqueeze(1).to(input_tensor.device)
        again = base_method(input_tensor=input_tensor * maps, targets=targets)
        coherency: np.ndarray = (batch_pearson_coherency(again, np.asarray(grayscale_cams)) + 1) / 2
        return coherency


class ARCC:
    """The harmonic mean of Coherency, 1 − Complexity and the rescaled ROADCombined (see the module doc)."""

    def __init__(self, base_method: CamMethod, road_percentiles: Sequence[float] = (20, 40, 60, 80)) -> None:
        self.complexity = Complexity()
        self.coherency = Coherency()
        self.road = ROADCombined(percentiles=road_percentiles)
        self.base_method = base_method

    def __call__(
        self, input_tensor: torch.Tensor, grayscale_cams: Any, targets: TargetSpec, model: nn.Module
    ) -> np.ndarray:
        maps = maps_array(grayscale_cams)
        complexity = self.complexity(maps)
        coherency = self.coherency(input_tensor, maps, targets, model, self.base_method)
        road = (self.road(input_tensor, maps, targets, model) * 2).clip(0, 1)
        arcc: np.ndarray = 3 * (1 / (coherency + 1e-8) + 1 / ((1 - complexity) + 1e-8) + 1 / (road + 1e-8)) ** (-1)
        return arcc
