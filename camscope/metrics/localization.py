"""Localization against ground truth: pointing games, relevance mass and rank accuracy, and the
localisation family of Quantus 0.6.0 (top-k intersection, attribution localisation, AUC, focus).

These need no model: they compare maps (N, H, W) with ground truth given as boolean masks (N, H, W)
or as one (K, 4) box array per image (several boxes per image are their union); see
:mod:`camscope.metrics.groundtruth` for coordinates and VOC files. The Quantus-family metrics first
prepare each map as Quantus does (``normalise``: divided by its largest magnitude; ``abs``), per map
(:func:`camscope.metrics._common.attributions`), and run batched over images on the maps' device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from camscope.core.errors import MetricInputError, warn
from camscope.metrics._common import ArrayLike, ImageScores, attributions, check_maps
from camscope.metrics.complexity import MapParams, map_rows
from camscope.metrics.groundtruth import GroundTruth, ground_truth_masks
from camscope.metrics.params import keywords, positive_int
from camscope.metrics.registry import Column, register_metric

RATIO_EPS = 1e-9  # Quantus's guard in attribution localisation's and focus's denominators

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


@dataclass(frozen=True)
class PointingParams:
    tolerance: float = 15

    def __post_init__(self) -> None:
        if not self.tolerance >= 0:
            raise MetricInputError(f"tolerance must be >= 0 pixels, got {self.tolerance}")


@dataclass(frozen=True)
class NoParams:
    """For the localization metrics that take no keyword parameter."""


@dataclass(frozen=True)
class LocalisationParams(MapParams):
    """How Quantus's localisation family reads each map (its defaults: not made absolute, normalised)."""

    abs: bool = False


@dataclass(frozen=True)
class TopKParams(LocalisationParams):
    k: int = 1000
    concept_influence: bool = False

    def __post_init__(self) -> None:
        positive_int(self.k, "top_k_intersection: k")  # its upper bound, the map's pixels, is checked on the maps


@dataclass(frozen=True)
class AttributionLocalisationParams(LocalisationParams):
    abs: bool = True
    weighted: bool = False
    max_size: float = 1.0
    positive_attributions: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.max_size <= 1:
            raise MetricInputError(f"attribution_localisation: max_size must be in (0, 1], got {self.max_size}")


def _prepare(maps: ArrayLike, ground_truth: GroundTruth) -> tuple[np.ndarray, np.ndarray]:
    m = check_maps(maps).numpy().astype(np.float64)
    n, h, w = m.shape
    return m, ground_truth_masks(ground_truth, n, h, w)


@keywords(PointingParams)
def pointing_game(
    maps: ArrayLike, ground_truth: GroundTruth, p: PointingParams = PointingParams()
) -> LocalizationResult:
    """Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016).

    As TorchRay implements it: the point is the map's maximum, and the image is a hit if some
    ground-truth pixel lies closer than ``tolerance`` pixels to it (``(Δx)² + (Δy)² < tolerance²``);
    with ``tolerance=0`` the point itself must be in the mask. Equal maxima (a constant map) point at
    the first one in raster order (``argmax``). An empty mask is an error, never a hit.
    """
    m, gt = _prepare(maps, ground_truth)
    n, _, w = m.shape
    flat = m.reshape(n, -1).argmax(axis=1)
    points = np.stack([flat // w, flat % w], axis=1)
    hits = np.zeros(n)
    for i, (r, c) in enumerate(points):
        rows, cols = np.nonzero(gt[i])
        nearest = ((rows - r) ** 2 + (cols - c) ** 2).min()
        hits[i] = float(gt[i, r, c] or nearest < p.tolerance**2)
    return LocalizationResult("pointing", hits, points)


@keywords(NoParams)
def relevance_mass(maps: ArrayLike, ground_truth: GroundTruth, p: NoParams = NoParams()) -> LocalizationResult:
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


@keywords(NoParams)
def energy_pointing_game(maps: ArrayLike, ground_truth: GroundTruth, p: NoParams = NoParams()) -> LocalizationResult:
    """Energy-based pointing game (Wang et al., "Score-CAM", CVPRW 2020).

    The fraction of the map's energy inside the boxes: ``Σ_{p ∈ boxes} L_p / Σ_p L_p`` — the same
    quantity as :func:`relevance_mass` on the boxes' mask; same conventions (all-zero map → 0).
    """
    result = relevance_mass(maps, ground_truth)
    result.name = "energy_pointing"
    return result


@keywords(NoParams)
def relevance_rank(maps: ArrayLike, ground_truth: GroundTruth, p: NoParams = NoParams()) -> LocalizationResult:
    """Relevance rank accuracy (Arras et al., "CLEVR-XAI", Information Fusion 2022).

    With K = |GT|, the fraction of the K most relevant pixels that lie in GT. Ties at the K-th value
    are shared out proportionally (the expected value under random tie-breaking), so the result does
    not depend on pixel order: a constant map scores K / (H·W). Quantus breaks ties by ``argsort``
    order instead; on maps without ties at the cut the two agree.
    """
    m, gt = _prepare(maps, ground_truth)
    values = torch.from_numpy(m.reshape(len(m), -1))
    inside = torch.from_numpy(gt.reshape(len(gt), -1))
    k = inside.sum(1)
    return LocalizationResult("relevance_rank", (top_k_hits(values, inside, k) / k).numpy())


def top_k_hits(values: torch.Tensor, inside: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """How many of each row's ``k`` largest values lie ``inside`` (rows (N, P), ``k`` (N,)).

    Values tied at the k-th largest share the remaining places proportionally — the expected count
    under random tie-breaking — so the count never depends on pixel order.
    """
    if bool((k == k[0]).all()):  # one k for all rows: the k largest alone, without a full sort
        cut = values.topk(max(int(k[0]), 1), dim=1).values[:, -1:]
    else:
        ordered = values.sort(dim=1, descending=True).values
        cut = ordered.gather(1, (k - 1).long().clamp(min=0)[:, None])
    above, at = values > cut, values == cut
    share = (k - above.sum(1)) / at.sum(1)
    return (above & inside).sum(1) + share * (at & inside).sum(1)


def _masks_on(maps: ArrayLike, ground_truth: GroundTruth, a: torch.Tensor) -> torch.Tensor:
    """Ground-truth masks as bool rows (N, H·W) beside the prepared attributions ``a``."""
    n, h, w = np.shape(maps)
    return torch.from_numpy(ground_truth_masks(ground_truth, n, h, w).reshape(n, -1)).to(a.device)


@keywords(TopKParams)
def top_k_intersection(maps: ArrayLike, ground_truth: GroundTruth, p: TopKParams = TopKParams()) -> ImageScores:
    """Top-k intersection (Theiner et al., "Interpretable Semantic Photo Geolocation", WACV 2022).

    The fraction of the ``k`` most relevant pixels inside the ground truth; with ``concept_influence``
    divided by the ground truth's area fraction |GT| / (H·W). Ties at the k-th value are shared out
    as in :func:`relevance_rank` (Quantus takes them in ``argsort`` order; equal on maps without ties).
    """
    a = attributions(maps, abs=p.abs, normalise=p.normalise)
    pixels = a.shape[1]
    if p.k > pixels:
        raise MetricInputError(f"top_k_intersection: k must be at most {pixels} (the map's pixels), got {p.k}")
    inside = _masks_on(maps, ground_truth, a)
    score = top_k_hits(a, inside, torch.full((len(a),), int(p.k), device=a.device)) / p.k
    if p.concept_influence:
        score = score * pixels / inside.sum(1)
    return ImageScores("top_k_intersection", score.cpu().numpy())


def _inside_fraction(a: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """``Σ_{GT} a / (Σ a + 1e-9)``: the share of the attribution inside the ground truth (Quantus's guard)."""
    return (a * inside).sum(1) / (a.sum(1) + RATIO_EPS)


@keywords(AttributionLocalisationParams)
def attribution_localisation(
    maps: ArrayLike, ground_truth: GroundTruth, p: AttributionLocalisationParams = AttributionLocalisationParams()
) -> ImageScores:
    """Attribution localisation (Kohlbrenner et al., "Towards Best Practice in Explaining Neural Network
    Decisions with LRP", IJCNN 2020): the share of the attribution inside the ground truth.

    ``weighted`` multiplies it by the ground truth's area fraction |GT| / (H·W), as Quantus does; Quantus
    computes that fraction against ``x_batch[2:].size`` (the pixels of all but two images of its batch,
    times the channels), which equals H·W only for three one-channel images — here it is always H·W.
    A ground truth larger than ``max_size`` of the image is warned about. Shares above 1 (possible
    with negative attributions, ``abs=False``) are NaN, with a warning, as in Quantus.
    """
    a = attributions(maps, abs=p.abs, normalise=p.normalise)
    if p.positive_attributions:
        a = a.clamp(min=0)
    inside = _masks_on(maps, ground_truth, a)
    area = inside.sum(1) / inside.shape[1]
    large = (area > p.max_size).nonzero().flatten().tolist()
    if large:
        warn(f"attribution_localisation: the ground truth covers more than max_size={p.max_size} of the image", large)
    share = _inside_fraction(a, inside)
    broken = (share > 1).nonzero().flatten().tolist()
    if broken:
        warn(
            "attribution_localisation: more attribution inside the ground truth than in total (negative "
            "attributions); the score is NaN",
            broken,
        )
        share[share > 1] = float("nan")
    if p.weighted:
        share = share * area
    return ImageScores("attribution_localisation", share.cpu().numpy())


def rank_auc(scores: torch.Tensor, positive: torch.Tensor) -> np.ndarray:
    """Area under each row's ROC curve: the chance a positive outscores a negative, ties counting ½
    (the Mann–Whitney statistic, equal to the trapezoidal area under ``sklearn.metrics.roc_curve``).

    One sort per row, of integer keys in the scores' order with the label in the lowest bit, so equal
    scores sort negatives first: the negatives up to a positive are those below it plus all those tied
    with it, and the ones below are those before its group of equal scores. Exact for float32 scores
    (CAM maps; 32-bit keys when none is negative); float64 scores one unit in the last place apart may
    count as tied. A row without positives or negatives has no curve: NaN. On the CPU, with NumPy.
    """
    keys = labelled_keys(scores.cpu(), positive.cpu().numpy())
    keys.sort(axis=1)
    hit = (keys & 1).astype(np.int32)
    n = keys.shape[1]
    new_group = np.ones(keys.shape, dtype=bool)
    np.greater(keys[:, 1:] ^ keys[:, :-1], 1, out=new_group[:, 1:])
    start = np.where(new_group, np.arange(n, dtype=np.int32), np.int32(0))
    np.maximum.accumulate(start, axis=1, out=start)
    miss = 1 - hit
    negatives = np.cumsum(miss, axis=1, dtype=np.int32)  # negatives at or before each position
    below = np.take_along_axis(negatives - miss, start, axis=1)  # negatives before its group
    wins = ((negatives + below) * hit).sum(1, dtype=np.int64) / 2
    n_pos = hit.sum(1, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        area: npt.NDArray[np.float64] = wins / (n_pos * (n - n_pos)).astype(np.float64)
    return area


def labelled_keys(scores: torch.Tensor, positive: np.ndarray) -> np.ndarray:
    """Unsigned integers in the order of the scores (rows), each shifted left one bit to carry its label.

    Float32 scores keep every bit: their 31 bits when none is negative (a non-negative float's bits
    are in its order), else 32 order bits in 64. Float64 scores give up their lowest bit.
    """
    label = positive.astype(np.uint32)
    values = (scores + 0.0).numpy()  # + 0.0: -0.0 becomes 0.0, its equal
    if values.dtype == np.float64:
        bits: npt.NDArray[np.uint64] = values.view(np.uint64)
        top = np.uint64(1 << 63)
        wide = np.where(bits & top, ~bits, bits | top)  # flip the negatives, lift the rest
        return (wide & ~np.uint64(1)) | label
    single: npt.NDArray[np.uint32] = values.view(np.uint32)
    if bool((values >= 0).all()):
        return (single << np.uint32(1)) | label
    high = np.uint32(1 << 31)
    lifted = np.where(single & high, ~single, single | high).astype(np.uint64)
    return (lifted << np.uint64(1)) | label


@keywords(LocalisationParams)
def auc(maps: ArrayLike, ground_truth: GroundTruth, p: LocalisationParams = LocalisationParams()) -> ImageScores:
    """AUC (Fawcett, "An introduction to ROC analysis", 2006): the map as a pixel classifier of the ground
    truth, scored by the area under its ROC curve. A ground truth that covers the whole image has no
    negatives: NaN, with a warning (Quantus: NaN)."""
    rows = map_rows(maps)  # dividing by the peak cannot change a rank: only abs matters
    a = rows.abs() if p.abs else rows
    inside = _masks_on(maps, ground_truth, a)
    full = inside.all(1).nonzero().flatten().tolist()
    if full:
        warn("auc: the ground truth covers the whole image, so there is nothing to rank it against; NaN", full)
    return ImageScores("auc", rank_auc(a, inside))


@keywords(LocalisationParams)
def focus(maps: ArrayLike, ground_truth: GroundTruth, p: LocalisationParams = LocalisationParams()) -> ImageScores:
    """Focus (Arias-Duart et al., "Focus! Rating XAI Methods and Finding Biases", FUZZ-IEEE 2022).

    On a mosaic of four images, two of them of the target class: the share of the positive attribution
    that falls on the target-class tiles. The ground truth is the mask of those tiles
    (:func:`camscope.data.mosaic.generate_mosaics` makes such mosaics; Quantus takes the four tiles'
    flags instead, ``custom_batch``). Quantus's ``mosaic_shape`` is unused there and not taken here.
    """
    a = attributions(maps, abs=p.abs, normalise=p.normalise).clamp(min=0)
    return ImageScores("focus", _inside_fraction(a, _masks_on(maps, ground_truth, a)).cpu().numpy())


for _name, _func, _description in (
    ("pointing", pointing_game, "pointing game hit (tolerance 15 px)"),
    ("energy_pointing", energy_pointing_game, "energy inside the boxes"),
    ("relevance_mass", relevance_mass, "relevance mass accuracy"),
    ("relevance_rank", relevance_rank, "relevance rank accuracy"),
    (
        "top_k_intersection",
        top_k_intersection,
        "share of the k most relevant pixels inside the ground truth (Quantus TopKIntersection)",
    ),
    (
        "attribution_localisation",
        attribution_localisation,
        "share of the attribution inside the ground truth (Quantus AttributionLocalisation)",
    ),
    ("auc", auc, "ROC AUC of the map against the ground truth (Quantus AUC)"),
    ("focus", focus, "share of positive attribution on the target tiles of a mosaic"),
):
    register_metric(_name, _func, [Column(_name, True)], needs_ground_truth=True, description=_description)
