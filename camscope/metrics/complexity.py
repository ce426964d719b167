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

import numpy as np
import torch

from camscope.core.errors import MetricInputError, warn
from camscope.metrics._common import ArrayLike, ImageScores, attributions
from camscope.metrics.registry import Column, register_metric

GINI_SHIFT = 1e-7  # Quantus adds this to every attribution, so an all-zero map scores 0, not 0/0
LOG_EPS = 1e-12  # inside the logarithm, as in Quantus: zero-attribution pixels add nothing


def sparseness(maps: ArrayLike, *, abs: bool = True, normalise: bool = True) -> ImageScores:
    """Gini index per map: ``Σ_i (2i − n − 1) a_(i) / (n Σ_i a_(i))`` over the sorted attributions
    ``a_(1) ≤ … ≤ a_(n)`` (each shifted by 1e-7, as Quantus does)."""
    a = attributions(maps, abs=abs, normalise=normalise) + GINI_SHIFT
    n = a.shape[1]
    ranks = torch.arange(1, n + 1, device=a.device, dtype=a.dtype)
    ordered = a.sort(dim=1).values
    gini = ((2 * ranks - n - 1) * ordered).sum(1) / (n * ordered.sum(1))
    return ImageScores("sparseness", gini.cpu().numpy())


def complexity(maps: ArrayLike, *, abs: bool = True, normalise: bool = True) -> ImageScores:
    """Entropy per map of ``p = a / Σ|a|``: ``−Σ p log(p + 1e-12)`` (nats). An all-zero map has no
    distribution: NaN, with a warning."""
    a = attributions(maps, abs=abs, normalise=normalise)
    total = a.abs().sum(1, keepdim=True)
    empty = (total[:, 0] == 0).nonzero().flatten().tolist()
    if empty:
        warn("complexity: an all-zero map has no attribution to spread; its entropy is NaN", empty)
    p = a / total
    entropy = -(p * torch.log(p + LOG_EPS)).sum(1)
    return ImageScores("complexity", entropy.cpu().numpy())


def effective_complexity(
    maps: ArrayLike, *, eps: float = 1e-5, abs: bool = True, normalise: bool = True
) -> ImageScores:
    """Number of pixels per map whose prepared attribution exceeds ``eps``."""
    if not np.isfinite(eps):
        raise MetricInputError(f"eps must be a finite number, got {eps}")
    a = attributions(maps, abs=abs, normalise=normalise)
    count = (a > eps).sum(1)
    return ImageScores("effective_complexity", count.cpu().numpy().astype(np.float64))


for _func, _higher, _params, _description in (
    (sparseness, True, ("abs", "normalise"), "Gini index of the map (Quantus Sparseness)"),
    (complexity, False, ("abs", "normalise"), "entropy of the map (Quantus Complexity)"),
    (effective_complexity, False, ("eps", "abs", "normalise"), "pixels above eps (Quantus EffectiveComplexity)"),
):
    register_metric(
        _func.__name__,
        _func,
        [Column(_func.__name__, higher_is_better=_higher)],
        params=_params,
        maps_only=True,
        description=_description,
    )
