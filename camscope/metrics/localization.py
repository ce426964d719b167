"""Localization against ground truth: pointing games, relevance mass and rank accuracy.

These need no model: they compare maps (N, H, W) with ground truth given as boolean masks (N, H, W)
or as one (K, 4) box array per image (several boxes per image are their union); see
:mod:`camscope.metrics.groundtruth` for coordinates and VOC files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from camscope.errors import MetricInputError
from camscope.metrics._common import ArrayLike, ImageScores, check_maps
from camscope.metrics.groundtruth import GroundTruth, ground_truth_masks

TORCHRAY_TOLERANCE = 15.0  # pixels: TorchRay's pointing-game tolerance ...
TORCHRAY_SIDE = 224  # ... for inputs of about this side


def scaled_tolerance(side: int) -> float:
    """TorchRay's 15-px pointing tolerance scaled to a ``side``-pixel input (about 4.3 px at 64 px).

    Why: the tolerance stands for "near the object" at ~224-px images; on small images the same
    15 px would count most of the image as a hit.
    """
    return TORCHRAY_TOLERANCE * side / TORCHRAY_SIDE


@dataclass
class LocalizationResult(ImageScores):
    """Per-image ``scores`` (N,) in [0, 1] and their mean; ``points`` for the pointing game."""

    points: np.ndarray | None = None


def _prepare(maps: ArrayLike, ground_truth: GroundTruth) -> tuple[np.ndarray, np.ndarray]:
    m = check_maps(maps).numpy().astype(np.float64)
    n, h, w = m.shape
    return m, ground_truth_masks(ground_truth, n, h, w)


def pointing_game(maps: ArrayLike, ground_truth: GroundTruth, *, tolerance: float = 15) -> LocalizationResult:
    """Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016).

    As TorchRay implements it: the point is the map's maximum, and the image is a hit if some
    ground-truth pixel lies closer than ``tolerance`` pixels to it (``(Δx)² + (Δy)² < tolerance²``);
    with ``tolerance=0`` the point itself must be in the mask. Equal maxima (a constant map) point at
    the first one in raster order (``argmax``). An empty mask is an error, never a hit.
    """
    if tolerance < 0:
        raise MetricInputError(f"tolerance must be >= 0 pixels, got {tolerance}")
    m, gt = _prepare(maps, ground_truth)
    n, _, w = m.shape
    flat = m.reshape(n, -1).argmax(axis=1)
    points = np.stack([flat // w, flat % w], axis=1)
    hits = np.zeros(n)
    for i, (r, c) in enumerate(points):
        rows, cols = np.nonzero(gt[i])
        nearest = ((rows - r) ** 2 + (cols - c) ** 2).min()
        hits[i] = float(gt[i, r, c] or nearest < tolerance**2)
    return LocalizationResult("pointing", hits, points)


def relevance_mass(maps: ArrayLike, ground_truth: GroundTruth) -> LocalizationResult:
    """Relevance mass accuracy (Arras et al., "CLEVR-XAI", Information Fusion 2022).

    ``Σ_{p ∈ GT} R_p / Σ_p R_p`` with negative relevance clipped to 0 (CAM maps are already
    non-negative). A map with no positive relevance scores 0; a constant map scores the GT's area
    fraction.
    """
    m, gt = _prepare(maps, ground_truth)
    r = np.clip(m, 0, None)
    inside = (r * gt).reshape(len(r), -1).sum(1)
    total = r.reshape(len(r), -1).sum(1)
    return LocalizationResult("relevance_mass", np.where(total > 0, inside / np.where(total > 0, total, 1), 0.0))


def energy_pointing_game(maps: ArrayLike, ground_truth: GroundTruth) -> LocalizationResult:
    """Energy-based pointing game (Wang et al., "Score-CAM", CVPRW 2020).

    The fraction of the map's energy inside the boxes: ``Σ_{p ∈ boxes} L_p / Σ_p L_p`` — the same
    quantity as :func:`relevance_mass` on the boxes' mask; same conventions (all-zero map → 0).
    """
    result = relevance_mass(maps, ground_truth)
    result.name = "energy_pointing"
    return result


def relevance_rank(maps: ArrayLike, ground_truth: GroundTruth) -> LocalizationResult:
    """Relevance rank accuracy (Arras et al., "CLEVR-XAI", Information Fusion 2022).

    With K = |GT|, the fraction of the K most relevant pixels that lie in GT. Ties at the K-th value
    are shared out proportionally (the expected value under random tie-breaking), so the result does
    not depend on pixel order: a constant map scores K / (H·W). Quantus breaks ties by ``argsort``
    order instead; on maps without ties at the cut the two agree.
    """
    m, gt = _prepare(maps, ground_truth)
    scores = np.empty(len(m))
    for i in range(len(m)):
        values, inside = m[i].ravel(), gt[i].ravel()
        k = int(inside.sum())
        cut = np.partition(values, len(values) - k)[len(values) - k]
        above, at = values > cut, values == cut
        share = (k - above.sum()) / at.sum()
        scores[i] = ((above & inside).sum() + share * (at & inside).sum()) / k
    return LocalizationResult("relevance_rank", scores)
