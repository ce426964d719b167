"""pytorch-grad-cam's metric framework: perturb each image with its map, score the target before and after.

``PerturbationConfidenceMetric(perturbation)(input_tensor, cams, targets, model)`` returns, per image,
``target(model(perturbed)) − target(model(x))`` (float32; the target on the raw output, so a
ClassifierOutputTarget scores the logit); ``return_visualization=True`` also returns the perturbed batch.
The perturbations are pytorch-grad-cam's: keep the pixels whose map value is below a percentile
(:class:`RemoveMostRelevantFirst`; its LeRF twin uses ``1 − map``) and impute the rest with an imputer.

Targets follow camscope's rule: one per image, or a single target (not in a list) for every image; a list of
another length is an error (pytorch-grad-cam zips targets with images, so ``[target]`` scores image 0 only);
None scores each image's top class. A target may return a vector (all classes' scores).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from camscope.core.errors import MetricInputError
from camscope.core.outputs import Outputs
from camscope.core.targets import Target, TargetSpec
from camscope.metrics._common import forward_outputs, resolve

Perturbation = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Imputer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def maps_array(cams: Any) -> np.ndarray:
    """A batch of maps given as an array, a tensor or a list of 2-D arrays (bool and uint8 included)."""
    if isinstance(cams, torch.Tensor):
        cams = cams.detach().cpu().numpy()
    maps = np.stack([np.asarray(c) for c in cams]) if isinstance(cams, (list, tuple)) else np.asarray(cams)
    if maps.ndim != 3:
        raise MetricInputError(f"expected one 2-D map per image, (N, H, W), got shape {maps.shape}")
    return maps


def percentile_keep(values: torch.Tensor, percentile: float) -> torch.Tensor:
    """Pixels kept by pytorch-grad-cam's threshold: those below ``np.percentile(values, percentile)``."""
    return values < float(np.percentile(values.cpu().numpy(), percentile))


def otsu_keep(values: torch.Tensor) -> torch.Tensor:
    """Pixels kept with ``percentile="auto"``: ``uint8(255 · map)`` above its Otsu threshold (OpenCV's rule)."""
    levels = np.uint8(values.cpu().numpy() * 255)
    histogram = np.bincount(levels.ravel(), minlength=256).astype(np.float64)
    total = histogram.sum()
    weight_low = np.cumsum(histogram)
    mass_low = np.cumsum(histogram * np.arange(256))
    weight_high = total - weight_low
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = mass_low / weight_low
        mean_high = (mass_low[-1] - mass_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
    threshold = int(np.argmax(np.nan_to_num(between, nan=-1.0)))
    return torch.from_numpy(levels > threshold)


class PerturbationConfidenceMetric:
    """The change in the target's score when each image is perturbed with its map (see the module doc)."""

    def __init__(self, perturbation: Perturbation) -> None:
        self.perturbation = perturbation

    def perturb(self, input_tensor: torch.Tensor, cams: np.ndarray) -> torch.Tensor:
        """The perturbed batch: ``perturbation(image, map)`` per image, on the CPU as pytorch-grad-cam calls it."""
        rows = [self.perturbation(input_tensor[i].cpu(), torch.from_numpy(cams[i])) for i in range(len(cams))]
        return torch.stack(rows).to(input_tensor.device)

    def __call__(
        self,
        input_tensor: torch.Tensor,
        cams: Any,
        targets: TargetSpec,
        model: nn.Module,
        return_visualization: bool = False,
        return_diff: bool = True,
    ) -> Any:
        maps = maps_array(cams)
        if maps.shape[0] != input_tensor.shape[0]:
            raise MetricInputError(f"{maps.shape[0]} maps for a batch of {input_tensor.shape[0]} images")
        batch_size = max(1, input_tensor.shape[0])
        resolved, logits = resolve(model, input_tensor, targets, batch_size, probability=False)
        perturbed = self.perturb(input_tensor, maps)
        after = _scores(resolved, forward_outputs(model, perturbed, batch_size))
        result = after - _scores(resolved, logits) if return_diff else after
        return (result, perturbed) if return_visualization else result


def _scores(targets: Sequence[Target], logits: Outputs) -> np.ndarray:
    """Each image's target on its output row, float32; a target may return a vector (all classes' scores)."""
    with torch.inference_mode():
        rows = [torch.as_tensor(t(row)).detach().cpu().numpy() for t, row in zip(targets, logits)]
    return np.asarray(rows, dtype=np.float32)


class RemoveMostRelevantFirst:
    """Remove (impute) the pixels at or above the map's ``percentile`` (MoRF); ``"auto"``: Otsu's threshold."""

    def __init__(self, percentile: float | str, imputer: Imputer) -> None:
        self.percentile = percentile
        self.imputer = imputer

    def keep(self, mask: torch.Tensor) -> torch.Tensor:
        return otsu_keep(mask) if self.percentile == "auto" else percentile_keep(mask, float(self.percentile))

    def __call__(self, input_tensor: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.imputer(input_tensor, self.keep(mask).float())


class RemoveLeastRelevantFirst(RemoveMostRelevantFirst):
    """Remove the pixels of ``1 − map`` at or above its percentile (LeRF)."""

    def __call__(self, input_tensor: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return super().__call__(input_tensor, 1 - mask)


class AveragerAcrossThresholds:
    """The mean over ``percentiles`` of ``imputer(percentile)``'s metric (``imputer``: a metric class)."""

    def __init__(
        self,
        imputer: Callable[[float], Callable[..., np.ndarray]],
        percentiles: Sequence[float] = (10, 20, 30, 40, 50, 60, 70, 80, 90),
    ) -> None:
        self.imputer = imputer
        self.percentiles = list(percentiles)

    def __call__(self, input_tensor: torch.Tensor, cams: Any, targets: TargetSpec, model: nn.Module) -> np.ndarray:
        scores = [self.imputer(p)(input_tensor, cams, targets, model) for p in self.percentiles]
        averaged: np.ndarray = np.asarray(scores, dtype=np.float32).mean(axis=0)
        return averaged
