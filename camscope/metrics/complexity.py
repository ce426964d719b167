"""Complexity of an explanation: how concentrated is its attribution?

The three measures of Quantus 0.6.0's complexity family, computed on the maps alone (no model),
batched over images on the maps' device. Each map is first prepared as Quantus does by default —
divided by its largest magnitude (``normalise``), then made non-negative (``abs``); see
:func:`camscope.metrics._common.attributions` for why per map.

* :func:`sparseness` — Gini index of the attribution (Chalasani et al., "Concise Explanations of
  Neural Networks using Adversarial Training", ICML 2020): 1 when one pixel holds everything, near 0
  for a uniform map; higher is better.
* :func:`complexity` — Shannon entropy of the attribution as a distribution over pixels (Bhatt et al.,
  "Evaluating and Aggregating Feature-based Model Explanations", IJCAI 2020); lower is better.
* :func:`effective_complexity` — the number of pixels whose attribution exceeds ``eps`` (Nguyen &
  Martínez, "On quantitative aspects of model interpretability", 2020); lower is better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from camscope.core.errors import MetricInputError, warn
from camscope.metrics._common import ArrayLike, ImageScores, attributions, check_maps
from camscope.metrics.params import keywords
from camscope.metrics.registry import Column, register_metric

GINI_SHIFT = 1e-7  # Quantus adds this to every attribution, so an all-zero map scores 0, not 0/0
LOG_EPS = 1e-12  # inside the logarithm, as in Quantus: zero-attribution pixels add nothing


@dataclass(frozen=True)
class MapParams:
    """How a metric of the maps alone reads each map: divided by its largest magnitude (``normalise``),
    then made non-negative (``abs``); Quantus's defaults for the complexity family."""

    abs: bool = True
    normalise: bool = True


@dataclass(frozen=True)
class EffectiveComplexityParams(MapParams):
    eps: float = 1e-5

    def __post_init__(self) -> None:
        if not np.isfinite(self.eps):
            raise MetricInputError(f"eps must be a finite number, got {self.eps}")


def map_rows(maps: ArrayLike) -> torch.Tensor:
    """The checked maps as rows (N, H·W) on their own device: in float32 when every value is a float32
    (CAM maps are, also when handed over as float64), else in float64. An order or a rank is the same in
    either, and float32 sorts about twice as fast."""
    if getattr(maps, "dtype", None) in (np.float32, torch.float32):
        m = check_maps(maps, keep_device=True, dtype=torch.float32)
    else:
        m = check_maps(maps, keep_device=True, dtype=torch.float64)
        single = m.float()
        m = single if bool((single == m).all()) else m
    return m.reshape(len(m), -1)


def sorted_rows(rows: torch.Tensor, *, in_place: bool = False) -> torch.Tensor:
    """Each row sorted ascending (``in_place``: in the tensor's own memory, on the CPU); on the CPU by
    NumPy, whose SIMD sort is about twice as fast as torch's."""
    if rows.device.type != "cpu":
        return rows.sort(dim=1).values
    if not in_place:
        return torch.from_numpy(np.sort(rows.numpy(), axis=1))
    rows.numpy().sort(axis=1)
    return rows


@keywords(MapParams)
def sparseness(maps: ArrayLike, p: MapParams = MapParams()) -> ImageScores:
    """Gini index per map: ``Σ_i (2i − n − 1) a_(i) / (n Σ_i a_(i))`` over the sorted attributions
    ``a_(1) ≤ … ≤ a_(n)`` (each shifted by 1e-7, as Quantus does).

    The map is sorted before it is divided by its peak and shifted: neither changes the order, so the sort
    runs once, in the map's own dtype, and the peak is the sorted row's end.
    """
    rows = map_rows(maps)
    ordered = (sorted_rows(rows.abs(), in_place=True) if p.abs else sorted_rows(rows)).double()
    n = ordered.shape[1]
    peak = torch.maximum(ordered[:, 0].abs(), ordered[:, -1].abs()) if p.normalise else torch.ones_like(ordered[:, 0])
    peak = torch.where(peak > 0, peak, torch.ones_like(peak))
    weights = 2 * torch.arange(1, n + 1, device=ordered.device, dtype=ordered.dtype) - n - 1
    # Σ_i w_i (a_i / peak + shift) = (a @ w) / peak: the weights sum to 0
    gini = (ordered @ weights / peak) / (n * (ordered.sum(1) / peak + n * GINI_SHIFT))
    return ImageScores("sparseness", gini.cpu().numpy())


@keywords(MapParams)
def complexity(maps: ArrayLike, p: MapParams = MapParams()) -> ImageScores:
    """Entropy per map of ``p = a / Σ|a|``: ``−Σ p log(p + 1e-12)`` (nats). An all-zero map has no
    distribution: NaN, with a warning."""
    a = attributions(maps, abs=p.abs, normalise=p.normalise)
    total = a.abs().sum(1, keepdim=True)
    empty = (total[:, 0] == 0).nonzero().flatten().tolist()
    if empty:
        warn("complexity: an all-zero map has no attribution to spread; its entropy is NaN", empty)
    share = a / total
    entropy = -(share * torch.log(share + LOG_EPS)).sum(1)
    return ImageScores("complexity", entropy.cpu().numpy())


@keywords(EffectiveComplexityParams)
def effective_complexity(maps: ArrayLike, p: EffectiveComplexityParams = EffectiveComplexityParams()) -> ImageScores:
    """Number of pixels per map whose prepared attribution exceeds ``eps``."""
    a = attributions(maps, abs=p.abs, normalise=p.normalise)
    count = (a > p.eps).sum(1)
    return ImageScores("effective_complexity", count.cpu().numpy().astype(np.float64))


for _func, _higher, _description in (
    (sparseness, True, "Gini index of the map (Quantus Sparseness)"),
    (complexity, False, "entropy of the map (Quantus Complexity)"),
    (effective_complexity, False, "pixels above eps (Quantus EffectiveComplexity)"),
):
    register_metric(
        _func.__name__,
        _func,
        [Column(_func.__name__, higher_is_better=_higher)],
        maps_only=True,
        description=_description,
    )
