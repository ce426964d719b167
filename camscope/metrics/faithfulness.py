"""Quantus's faithfulness family, batched: does removing what the map calls important change the output?

Faithfulness correlation, monotonicity correlation, pixel flipping, region perturbation, selectivity,
IROF and infidelity, each equal to Quantus 0.6.0 (Hedström et al., JMLR 2023) on the same inputs and
registered under its Quantus name in snake_case, with Quantus's parameter names and defaults; and
Chefer et al.'s positive / negative perturbation test (no Quantus counterpart).

The difference is the schedule: Quantus loops over steps, perturbs a NumPy copy of the batch, and runs
one forward per step; here every perturbed input (image × step × sample) is one row of
:func:`~camscope.metrics._common.score_batches`, built on the inputs' device only when its chunk runs,
and the clean images ride in the first of those forwards (unless a memo already holds their logits).
Each metric's keywords are a dataclass (:class:`Perturbing` and one subclass per metric, see
:mod:`camscope.metrics.params`), whose fields are the public keyword-only parameters.

Shared conventions, as Quantus's:

* a map (N, H, W) is broadcast over the C channels, so a *feature* is one (channel, pixel) value and an
  image has C·H·W of them; maps are first divided by their largest magnitude (``normalise``), then
  made absolute (``abs``). Quantus divides by the largest magnitude over the whole batch it is given,
  which makes one image's score depend on its batch-mates; here each map is divided by its own.
* feature and patch rankings are NumPy's ``argsort`` of the same float32 arrays Quantus sorts, so
  ties fall the same way;
* ``perturb_baseline`` ``"black"`` / ``"white"`` is each image's minimum / maximum value over all
  channels, ``"mean"`` its mean, a number that number; ``"uniform"`` (the sampling metrics) one
  uniform [0, 1) value per perturbed input;
* ``softmax`` scores class targets by softmax probability (else the logit);
* ``seed`` seeds the sampling metrics' draws (:class:`~camscope.metrics.sampling.Draws`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor, nn
from torch.nn import Module

from camscope.core.errors import MetricInputError, warn
from camscope.core.targets import ClassifierOutputTarget, Target, TargetSpec
from camscope.metrics import sampling
from camscope.metrics._common import (
    REMOVED,
    ArrayLike,
    check_inputs,
    resolve,
    score_batches,
    score_batches_with_clean,
    shared_forwards,
)
from camscope.metrics.deletion import make_substrate, ranked_rows, replace_ranked
from camscope.metrics.params import Batched, ImageStats, MapReading, keywords, positive_int, takes_image_stats
from camscope.metrics.registry import Column, register_metric

Baseline = str | float
FIXED_BASELINES = ("black", "white", "mean")


@dataclass
class FaithfulnessResult:
    """Per-image scores of one metric (``scores``, the first summary column) and, where the score
    summarises a curve, the curves (N, K) with ``x`` the fraction of features perturbed at each point."""

    name: str
    scores: np.ndarray
    curves: np.ndarray | None = None
    x: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, np.ndarray]:
        return {self.name: self.scores}

    def curve_points(self, pixels: int) -> dict[str, tuple[list[float], np.ndarray]]:
        return {} if self.curves is None else {self.name: (self.x, self.curves)}


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Perturbing(MapReading):
    """Quantus's keywords shared by the family: what a removed feature becomes, how the output is read.

    A metric's dataclass adds its own keywords and redeclares ``perturb_baseline``, ``softmax``, ``abs``
    or ``normalise`` where Quantus's default differs for it; the fields named in ``positive`` are
    checked to be positive integers.
    """

    positive: ClassVar[tuple[str, ...]] = ()
    perturb_baseline: Baseline = "black"
    softmax: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in self.positive:
            positive_int(getattr(self, name), name)


@dataclass(frozen=True)
class Correlation(Perturbing):
    """Faithfulness correlation's keywords (Quantus's FaithfulnessCorrelation)."""

    positive: ClassVar[tuple[str, ...]] = ("nr_runs", "subset_size")
    nr_runs: int = 100
    subset_size: int = 224
    softmax: bool = False
    seed: int | None = None


@dataclass(frozen=True)
class Monotonicity(Perturbing):
    """Monotonicity correlation's keywords (Quantus's MonotonicityCorrelation)."""

    positive: ClassVar[tuple[str, ...]] = ("nr_samples", "features_in_step")
    eps: float = 1e-5
    nr_samples: int = 100
    features_in_step: int = 1
    abs: bool = True
    perturb_baseline: Baseline = "uniform"
    seed: int | None = None


@dataclass(frozen=True)
class PixelFlipping(Perturbing):
    """Pixel flipping's keywords (Quantus's PixelFlipping)."""

    positive: ClassVar[tuple[str, ...]] = ("features_in_step",)
    features_in_step: int = 1


@dataclass(frozen=True)
class Patches(Perturbing):
    """Selectivity's keywords (Quantus's Selectivity): square patches of ``patch_size`` pixels."""

    positive: ClassVar[tuple[str, ...]] = ("patch_size",)
    patch_size: int = 8


@dataclass(frozen=True)
class Regions(Patches):
    """Region perturbation's keywords (Quantus's RegionPerturbation): patches, in which order, how many."""

    positive: ClassVar[tuple[str, ...]] = ("patch_size", "regions_evaluation")
    order: str = "morf"
    regions_evaluation: int = 100
    seed: int | None = None


@dataclass(frozen=True)
class Segments(Perturbing):
    """IROF's keywords (Quantus's IROF): superpixels instead of patches."""

    segmentation_method: str = "slic"
    perturb_baseline: Baseline = "mean"


@dataclass(frozen=True)
class Infidelity(Perturbing):
    """Infidelity's keywords (Quantus's Infidelity)."""

    positive: ClassVar[tuple[str, ...]] = ("n_perturb_samples",)
    loss_func: str | Callable[[np.ndarray, np.ndarray], np.ndarray] = "mse"
    perturb_patch_sizes: Sequence[int] = (4,)
    n_perturb_samples: int = 10
    normalise: bool = False
    softmax: bool = False


# --------------------------------------------------------------------------- shared preparation


@dataclass
class _Setup:
    """What every metric of the family starts from: the maps as Quantus reads them, and once the first
    forward has run (:meth:`score`), the resolved targets and their clean scores."""

    model: nn.Module
    inputs: torch.Tensor
    attributions: np.ndarray  # (N, H, W) float32, normalised / absolute as asked
    p: Perturbing
    requested: TargetSpec
    targets: list[Target] = field(default_factory=list)
    clean: np.ndarray = field(default_factory=lambda: np.empty(0))  # (N,) float64: the target's clean score

    def features(self, channels: int) -> np.ndarray:
        """The maps broadcast over the channels and flattened: (N, C·H·W) float32, as Quantus's ``a_batch``."""
        a = self.attributions
        n = a.shape[0]
        return np.ascontiguousarray(np.broadcast_to(a[:, None], (n, channels, *a.shape[1:]))).reshape(n, -1)

    def score(
        self, items: Sequence[Any], build: Callable[[Sequence[Any]], tuple[torch.Tensor, Sequence[int]]]
    ) -> np.ndarray:
        """Scores of the perturbed inputs ``build`` makes of ``items``; the first call also resolves the
        targets and scores the clean images, in the same forwards (:func:`score_batches_with_clean`)."""
        if self.targets:
            return score_batches(self.model, self.targets, items, build, self.p.batch_size)
        self.targets, self.clean, scores = score_batches_with_clean(
            self.model, self.inputs, self.requested, items, build, self.p.batch_size, probability=self.p.softmax
        )
        return scores


def attributions(maps: torch.Tensor, abs: bool, normalise: bool) -> np.ndarray:
    """Quantus's preprocessing of the maps, per image: divide by the largest magnitude, then take |·|."""
    a = maps.numpy().astype(np.float32, copy=True)
    if normalise:
        peak = np.abs(a).max(axis=(1, 2), keepdims=True)
        a = np.divide(a, peak, out=a, where=peak > 0)
    return np.abs(a) if abs else a


def _setup(model: nn.Module, inputs: torch.Tensor, maps: ArrayLike, targets: TargetSpec, p: Perturbing) -> _Setup:
    maps_t = check_inputs(inputs, maps)
    assert maps_t is not None
    return _Setup(model, inputs, attributions(maps_t, p.abs, p.normalise), p, targets)


def baseline_fill(inputs: torch.Tensor, baseline: Baseline, allowed: Sequence[str] = FIXED_BASELINES) -> torch.Tensor:
    """The replacement value of each image (N,), on the inputs' device; ``"uniform"`` is drawn per row instead."""
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full((inputs.shape[0],), float(baseline), device=inputs.device, dtype=inputs.dtype)
    flat = inputs.reshape(inputs.shape[0], -1)
    if baseline == "black":
        return flat.amin(dim=1)
    if baseline == "white":
        return flat.amax(dim=1)
    if baseline == "mean":
        return flat.mean(dim=1)
    if baseline == "uniform" and "uniform" in allowed:
        return torch.full((inputs.shape[0],), float("nan"), device=inputs.device, dtype=inputs.dtype)
    raise MetricInputError(f"unknown perturb_baseline {baseline!r}: use {', '.join(map(repr, allowed))} or a number")


def _row_fill(
    fill: torch.Tensor, owners: Sequence[int], baseline: Baseline, draws: sampling.Draws | None
) -> torch.Tensor:
    """The replacement value of each row of a chunk (rows, 1)."""
    if baseline == "uniform":
        assert draws is not None
        return draws.uniform((len(owners),), 0.0, 1.0).to(fill.dtype)[:, None]
    return fill[list(owners)][:, None]


def _features_in_step(step: int, pixels: int) -> int:
    if pixels % step:
        raise MetricInputError(f"features_in_step={step} must divide the image's H·W = {pixels} pixels (as Quantus)")
    return int(step)


def _rank(order: np.ndarray, device: torch.device) -> torch.Tensor:
    """``rank[i, f]``: the position of feature ``f`` in row ``i`` of ``order`` (an argsort)."""
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(order.shape[1]), order.shape), axis=1)
    return torch.from_numpy(rank).to(device)


def trapezoid(curves: np.ndarray) -> np.ndarray:
    """``np.trapezoid(curves, dx=1, axis=1)``: Quantus's ``calculate_auc`` (unnormalised, x = step index)."""
    if curves.shape[1] < 2:
        return np.zeros(curves.shape[0])
    area: np.ndarray = curves.sum(axis=1) - (curves[:, 0] + curves[:, -1]) / 2
    return area


def pearson_rows(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Pearson's r of each row pair (float64), NaN (with a warning) where a row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    flat = (na == 0) | (nb == 0)
    if flat.any():
        warn(
            f"{metric}: a constant attribution or output series has no correlation (NaN)", np.flatnonzero(flat).tolist()
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.einsum("ij,ij->i", a, b) / (na * nb)
    return np.where(flat, np.nan, np.clip(r, -1.0, 1.0))


def spearman_rows(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Spearman's rho of each row pair: Pearson's r of the average ranks (ties share their mean rank)."""
    return pearson_rows(rankdata(a, axis=1), rankdata(b, axis=1), metric)


# --------------------------------------------------------------------------- patches


@dataclass(frozen=True)
class _Grid:
    """Quantus's square patches: the image padded (floor / ceil of the remainder) to a multiple of ``size``."""

    size: int
    top: int
    left: int
    rows: int  # patches down
    cols: int  # patches across

    @classmethod
    def of(cls, h: int, w: int, size: int) -> _Grid:
        if size > min(h, w):
            raise MetricInputError(f"patch size {size} is larger than the {h}×{w} image")
        pad_h, pad_w = -h % size, -w % size
        return cls(size, pad_h // 2, pad_w // 2, (h + pad_h) // size, (w + pad_w) // size)

    @property
    def count(self) -> int:
        return self.rows * self.cols

    def patch_of_pixel(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """(H·W,) int64: the raster index of the patch each pixel falls in."""
        ys = (torch.arange(h, device=device) + self.top) // self.size
        xs = (torch.arange(w, device=device) + self.left) // self.size
        return (ys[:, None] * self.cols + xs[None, :]).reshape(-1)

    def sums(self, a: np.ndarray, channels: int) -> np.ndarray:
        """(N, patches) float32 sums of the channel-broadcast, zero-padded maps, summed as Quantus sums them."""
        n, h, w = a.shape
        s = self.size
        padded = np.zeros((n, channels, self.rows * s, self.cols * s), dtype=np.float32)
        padded[:, :, self.top : self.top + h, self.left : self.left + w] = a[:, None]
        blocks = padded.reshape(n, channels, self.rows, s, self.cols, s).transpose(0, 2, 4, 1, 3, 5)
        out: np.ndarray = np.ascontiguousarray(blocks).reshape(n, self.count, -1).sum(axis=-1)
        return out

    def pixel_rank(self, patch_rank: np.ndarray | torch.Tensor, h: int, w: int, device: torch.device) -> torch.Tensor:
        """(N, 1, H, W): the rank of the patch each pixel falls in, from the patches' ranks (N, patches)."""
        pixel_patch = self.patch_of_pixel(h, w, device)
        return torch.as_tensor(patch_rank).to(device)[:, pixel_patch].view(-1, 1, h, w)


def _removal_scores(setup: _Setup, rank: torch.Tensor, limits: Sequence[int], fill: torch.Tensor) -> np.ndarray:
    """Scores (N, len(limits)) with the elements of rank < each limit set to each image's ``fill`` value."""
    items, build = ranked_rows(setup.inputs, fill.view(-1, 1, 1, 1), rank, limits)
    return setup.score(items, build).reshape(len(setup.inputs), len(limits))


def _patch_curves(
    model: nn.Module,
    inputs: torch.Tensor,
    setup: _Setup,
    p: Patches,
    grid: _Grid,
    ranking: np.ndarray,
    steps: int,
) -> tuple[np.ndarray, list[float]]:
    """Region perturbation and selectivity: scores after the first 1 … ``steps`` patches of ``ranking`` are
    set to the baseline, cumulatively; with the fraction of the patches each step has removed."""
    h, w = inputs.shape[2:]
    rank = grid.pixel_rank(_rank(ranking, torch.device("cpu")), h, w, inputs.device)
    fill = baseline_fill(inputs, p.perturb_baseline)
    scores = _removal_scores(setup, rank, range(1, steps + 1), fill)
    return scores, [(k + 1) / grid.count for k in range(steps)]


# --------------------------------------------------------------------------- the metrics


@keywords(Correlation)
def faithfulness_correlation(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Correlation = Correlation()
) -> FaithfulnessResult:
    """Faithfulness correlation (Bhatt et al., IJCAI 2020): higher is better.

    ``nr_runs`` times, a random ``subset_size`` of the C·H·W features is set to the baseline; the score
    is Pearson's r between the attribution summed over the subset and the drop of the target's score
    (the logit unless ``softmax``).
    """
    setup = _setup(model, inputs, maps, targets, p)
    n, c, h, w = inputs.shape
    runs, k = p.nr_runs, p.subset_size
    if k >= h * w:
        raise MetricInputError(f"subset_size={k} must be smaller than the image's H·W = {h * w} pixels (as Quantus)")
    fill = baseline_fill(inputs, p.perturb_baseline, (*FIXED_BASELINES, "uniform"))
    draws = sampling.Draws(p.seed, inputs.device)
    a = torch.from_numpy(setup.features(c)).to(inputs.device)
    x = inputs.reshape(n, -1)
    sums = np.empty(runs * n)
    items = [(pos, i) for pos, (_, i) in enumerate((r, i) for r in range(runs) for i in range(n))]

    def build(chunk: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, list[int]]:
        owners = [i for _, i in chunk]
        index = draws.subsets(len(chunk), c * h * w, k)
        rows = _row_fill(fill, owners, p.perturb_baseline, draws).expand(-1, k)
        # the subset's attributions read straight from the (N, C·H·W) maps, not from a per-row copy of them
        offsets = torch.tensor(owners, device=a.device)[:, None] * a.shape[1]
        sums[chunk[0][0] : chunk[-1][0] + 1] = a.take(index + offsets).sum(1).double().cpu().numpy()
        return x[owners].scatter_(1, index, rows).view(len(chunk), c, h, w), owners

    perturbed = setup.score(items, build).reshape(runs, n).T
    scores = pearson_rows(sums.reshape(runs, n).T, setup.clean[:, None] - perturbed, "faithfulness_correlation")
    return FaithfulnessResult("faithfulness_correlation", scores)


@keywords(Monotonicity)
def monotonicity_correlation(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Monotonicity = Monotonicity()
) -> FaithfulnessResult:
    """Monotonicity correlation (Nguyen & Martínez, 2020): higher is better.

    Features are taken ``features_in_step`` at a time in increasing order of attribution; each group
    alone is set to the baseline ``nr_samples`` times, and the score is Spearman's rho between the
    group's attribution and the mean squared change of the target's score divided by the clean score
    squared (not divided where |score| < ``eps``). A fixed baseline makes every sample the same: it
    is run once.
    """
    setup = _setup(model, inputs, maps, targets, p)
    n, c, h, w = inputs.shape
    step = _features_in_step(p.features_in_step, h * w)
    fill = baseline_fill(inputs, p.perturb_baseline, (*FIXED_BASELINES, "uniform"))
    samples = p.nr_samples if p.perturb_baseline == "uniform" else 1
    a = setup.features(c)
    order = np.argsort(a, axis=1)
    n_steps = a.shape[1] // step
    groups = np.take_along_axis(a, order, axis=1).reshape(n, n_steps, step).sum(axis=-1)
    group = (_rank(order, inputs.device) // step).int()  # int32: half the bytes gathered per row
    draws = sampling.Draws(p.seed, inputs.device)
    x = inputs.reshape(n, -1)
    items = [(s, i) for s in range(n_steps) for _ in range(samples) for i in range(n)]

    def build(chunk: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, list[int]]:
        owners = [i for _, i in chunk]
        hit = group[owners] == torch.tensor([s for s, _ in chunk], device=inputs.device)[:, None]
        rows = _row_fill(fill, owners, p.perturb_baseline, draws)
        return torch.where(hit, rows, x[owners]).view(len(chunk), c, h, w), owners

    perturbed = setup.score(items, build).reshape(n_steps, samples, n)
    y = setup.clean
    inverse = np.where(np.abs(y) >= p.eps, 1.0 / np.where(y == 0, 1.0, np.abs(y)), 1.0) ** 2
    variance = ((perturbed - y) ** 2).mean(axis=1).T * inverse[:, None]
    return FaithfulnessResult("monotonicity_correlation", spearman_rows(groups, variance, "monotonicity_correlation"))


@keywords(PixelFlipping)
def pixel_flipping(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: PixelFlipping = PixelFlipping()
) -> FaithfulnessResult:
    """Pixel flipping (Bach et al., PLoS ONE 2015): lower is better.

    Features are set to the baseline ``features_in_step`` at a time in decreasing order of
    attribution, cumulatively; the curve is the target's score after each step and the score its
    area (trapezoid, x = step index: Quantus's ``return_auc_per_sample``).
    """
    setup = _setup(model, inputs, maps, targets, p)
    n, c, h, w = inputs.shape
    step = _features_in_step(p.features_in_step, h * w)
    a = setup.features(c)
    rank = _rank(np.argsort(-a, axis=1), inputs.device).view(n, c, h, w)
    n_steps = a.shape[1] // step
    limits = [(k + 1) * step for k in range(n_steps)]
    fill = baseline_fill(inputs, p.perturb_baseline)
    curves = _removal_scores(setup, rank, limits, fill)
    fraction = [(k + 1) / n_steps for k in range(n_steps)]
    return FaithfulnessResult("pixel_flipping", trapezoid(curves), curves, fraction)


@keywords(Regions)
def region_perturbation(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Regions = Regions()
) -> FaithfulnessResult:
    """Region perturbation (Samek et al., IEEE TNNLS 2017): with ``order="morf"`` higher is better.

    Square patches are set to the baseline one after another — most relevant first (``"morf"``), least
    relevant first (``"lerf"``) or in a random order — for the first ``regions_evaluation`` patches;
    the curve is the drop of the target's score after each and the score its area (trapezoid, x =
    step index).
    """
    setup = _setup(model, inputs, maps, targets, p)
    n, c, h, w = inputs.shape
    grid = _Grid.of(h, w, p.patch_size)
    order = p.order.lower() if isinstance(p.order, str) else p.order
    if order == "morf":
        ranking = np.argsort(-grid.sums(setup.attributions, c), axis=-1)
    elif order == "lerf":
        ranking = np.argsort(grid.sums(setup.attributions, c), axis=-1)
    elif order == "random":
        ranking = sampling.Draws(p.seed, inputs.device).permutations(n, grid.count).cpu().numpy()
    else:
        raise MetricInputError(f"unknown order {p.order!r}: use 'morf', 'lerf' or 'random'")
    steps = min(p.regions_evaluation, grid.count)
    scores, fraction = _patch_curves(model, inputs, setup, p, grid, ranking, steps)
    curves = setup.clean[:, None] - scores
    return FaithfulnessResult("region_perturbation", trapezoid(curves), curves, fraction)


@keywords(Patches)
def selectivity(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Patches = Patches()
) -> FaithfulnessResult:
    """Selectivity (Montavon et al., DSP 2018): lower is better.

    Every square patch is set to the baseline, most relevant first, cumulatively; the curve is the
    target's score after each patch and the score its area (trapezoid, x = step index).
    """
    setup = _setup(model, inputs, maps, targets, p)
    _, c, h, w = inputs.shape
    grid = _Grid.of(h, w, p.patch_size)
    ranking = np.argsort(-grid.sums(setup.attributions, c), axis=-1)
    curves, fraction = _patch_curves(model, inputs, setup, p, grid, ranking, grid.count)
    return FaithfulnessResult("selectivity", trapezoid(curves), curves, fraction)


def superpixels(image: np.ndarray, method: str) -> np.ndarray:
    """Quantus's segmentation of one (C, H, W) image: scikit-image's ``slic`` or ``felzenszwalb``."""
    try:
        from skimage.segmentation import felzenszwalb, slic
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise MetricInputError("irof needs scikit-image: pip install 'camscope[faithfulness]'") from exc
    pixels = np.moveaxis(image, 0, -1).astype("double")
    if method == "slic":
        segments: np.ndarray = slic(pixels, start_label=0)
    elif method == "felzenszwalb":
        segments = felzenszwalb(pixels)
    else:
        raise MetricInputError(f"unknown segmentation_method {method!r}: use 'slic' or 'felzenszwalb'")
    return segments


@keywords(Segments)
def irof(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Segments = Segments()
) -> FaithfulnessResult:
    """Iterative Removal Of Features (Rieger & Hansen, 2020): higher is better.

    The image is cut into superpixels; they are set to the baseline, highest mean attribution first,
    cumulatively, and the curve is the target's score relative to the clean score. The score is the
    area *over* the curve, ``S − trapezoid(curve)`` for S segments. With ``"mean"`` each segment gets
    the mean of the image as it is when the segment is removed (Quantus recomputes it each step).
    All channels of a segment are replaced (Quantus 0.6.0's batched mask covers one channel and fails
    on RGB inputs).
    """
    setup = _setup(model, inputs, maps, targets, p)
    n, c, h, w = inputs.shape
    fixed = baseline_fill(inputs, p.perturb_baseline).double().cpu().numpy()
    images = inputs.detach().cpu().numpy()
    segment_rank, fills, counts = [], [], []
    for i in range(n):
        segments = superpixels(images[i], p.segmentation_method)
        count = len(np.unique(segments))
        if count < 2:
            raise MetricInputError(f"irof: the segmentation of image {i} has one segment; it needs at least two")
        a = np.broadcast_to(setup.attributions[i][None], (c, h, w))
        means = np.array([np.mean(a[:, segments == s]) for s in range(count)])
        order = np.argsort(-means)
        rank = np.empty(count, dtype=np.int64)
        rank[order] = np.arange(count)
        values = np.full(count, fixed[i])
        if p.perturb_baseline == "mean":
            sums = np.bincount(segments.reshape(-1), images[i].astype(np.float64).sum(axis=0).reshape(-1), count)
            sizes = np.bincount(segments.reshape(-1), minlength=count) * c
            total = images[i].astype(np.float64).sum()
            for t, s in enumerate(order):
                values[t] = total / (c * h * w)
                total += values[t] * sizes[s] - sums[s]
        segment_rank.append(torch.from_numpy(rank[segments].reshape(-1)))
        fills.append(torch.from_numpy(values))
        counts.append(count)
    device, dtype = inputs.device, inputs.dtype
    pixel_rank = [r.to(device) for r in segment_rank]
    pixel_fill = [f.to(device, dtype)[r] for f, r in zip(fills, pixel_rank)]
    items = [(i, k) for i in range(n) for k in range(counts[i])]

    def build(chunk: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, list[int]]:
        owners = [i for i, _ in chunk]
        rows = [
            torch.where((pixel_rank[i] <= k).view(1, h, w), pixel_fill[i].view(1, h, w), inputs[i]) for i, k in chunk
        ]
        return torch.stack(rows), owners

    flat = setup.score(items, build)
    curves = np.full((n, max(counts)), np.nan)
    start = 0
    scores = np.empty(n)
    for i, count in enumerate(counts):
        curves[i, :count] = flat[start : start + count] / setup.clean[i]
        scores[i] = count - trapezoid(curves[i : i + 1, :count])[0]
        start += count
    fraction = [(k + 1) / curves.shape[1] for k in range(curves.shape[1])]
    return FaithfulnessResult("irof", scores, curves, fraction)


@keywords(Infidelity)
def infidelity(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Infidelity = Infidelity()
) -> FaithfulnessResult:
    """Infidelity (Yeh et al., NeurIPS 2019) as Quantus 0.6.0 computes it: lower is better.

    For each patch size, square patches are set to the baseline in raster order, cumulatively; at
    each step the drop of the target's score (the logit unless ``softmax``) is compared with
    ``Σ attribution · (x − x_perturbed)``, and the loss (mean squared difference over the steps, or
    ``loss_func(drops, sums)`` on (N, steps) arrays) is averaged over the patch sizes. Quantus repeats
    this ``n_perturb_samples`` times with the same deterministic perturbation, so the samples are
    all equal: it is computed once.
    """
    setup = _setup(model, inputs, maps, targets, p)
    n, _, h, w = inputs.shape
    if p.loss_func == "mse":
        loss: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda a, b: ((a - b) ** 2).mean(axis=1)  # noqa: E731
    elif callable(p.loss_func):
        loss = p.loss_func
    else:
        raise MetricInputError(f"unknown loss_func {p.loss_func!r}: use 'mse' or a callable")
    sizes = [positive_int(size, "perturb_patch_sizes entry") for size in p.perturb_patch_sizes]
    if not sizes:
        raise MetricInputError("perturb_patch_sizes is empty")
    fill = baseline_fill(inputs, p.perturb_baseline)
    # each pixel's contribution Σ_c a · (x − fill) when it is replaced, summed per patch then accumulated
    a = torch.from_numpy(setup.attributions).to(inputs.device, torch.float64)
    moved = (a * (inputs.double() - fill.double().view(-1, 1, 1, 1)).sum(dim=1)).reshape(n, -1)
    losses = []
    for size in sizes:
        grid = _Grid.of(h, w, size)
        raster = grid.pixel_rank(torch.arange(grid.count).expand(n, -1), h, w, inputs.device)
        steps = range(1, grid.count + 1)
        scores = _removal_scores(setup, raster, steps, fill)
        drops = setup.clean[:, None] - scores
        per_patch = torch.zeros(n, grid.count, dtype=torch.float64, device=inputs.device)
        per_patch.index_add_(1, grid.patch_of_pixel(h, w, inputs.device), moved)
        losses.append(np.asarray(loss(drops, per_patch.cumsum(dim=1).cpu().numpy()), dtype=np.float64))
    return FaithfulnessResult("infidelity", np.mean(losses, axis=0))


# --------------------------------------------------------------------------- Chefer et al.'s perturbation test

CHEFER_STEPS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Chefer(ImageStats, Batched):
    """The perturbation test's keywords: the fractions of pixels removed, the model's normalisation."""

    steps: Sequence[float] = CHEFER_STEPS

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.steps or any(not 0 <= float(f) <= 1 for f in self.steps):
            raise MetricInputError(f"steps must be fractions in [0, 1], got {list(self.steps)}")


class TopOneHit:
    """1.0 where ``category`` is the output's top-1 class, else 0.0 (a target scoring correctness)."""

    def __init__(self, category: int) -> None:
        self.category = category

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return (model_output.argmax(dim=-1) == self.category).double()


def _chefer(
    name: str, model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec, p: Chefer
) -> FaithfulnessResult:
    """Top-1 hits after blacking out the ``int(H·W·p)`` most (positive) or least (negative) relevant
    pixels, for each fraction ``p`` of ``steps``; the score is the area under the hit curve."""
    maps_t = check_inputs(inputs, maps)
    assert maps_t is not None
    fractions = [float(f) for f in p.steps]
    n, _, h, w = inputs.shape
    with shared_forwards(model):
        resolved, _ = resolve(model, inputs, targets, p.batch_size, probability=False)
    if any(type(t) is not ClassifierOutputTarget for t in resolved):
        raise MetricInputError(f"{name} needs class-index targets: it counts top-1 hits")
    hits = [TopOneHit(t.category) for t in resolved if isinstance(t, ClassifierOutputTarget)]
    black = make_substrate("black", inputs, p.mean, p.std)
    relevance = maps_t.reshape(n, -1) if name == "positive_perturbation" else -maps_t.reshape(n, -1)
    order = torch.argsort(relevance, dim=1, descending=True, stable=True).numpy()
    rank = _rank(order, inputs.device).view(n, 1, h, w)
    limits = [int(h * w * f) for f in fractions]
    curves = replace_ranked(model, hits, inputs, black, rank, limits, p.batch_size)
    area = np.trapezoid(curves, x=fractions, axis=1) if len(fractions) > 1 else curves[:, 0].copy()
    return FaithfulnessResult(name, area, curves, fractions)


@keywords(Chefer)
def positive_perturbation(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Chefer = Chefer()
) -> FaithfulnessResult:
    """Positive perturbation (Chefer, Gur & Wolf, CVPR 2021): lower is better.

    As their ViT evaluation code: for each fraction p of ``steps`` (10 % … 90 %), the ``int(H·W·p)``
    most relevant pixels are set to black (0 in image space, all channels) and the curve records
    whether the target class is still the top-1; the score is the area under that curve over p
    (trapezoid), so the batch mean is the area under their accuracy curve.
    """
    return _chefer("positive_perturbation", model, inputs, maps, targets, p)


@keywords(Chefer)
def negative_perturbation(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Chefer = Chefer()
) -> FaithfulnessResult:
    """Negative perturbation (Chefer, Gur & Wolf, CVPR 2021): higher is better.

    :func:`positive_perturbation` with the least relevant pixels removed first (their ``vis = -vis``).
    """
    return _chefer("negative_perturbation", model, inputs, maps, targets, p)


# --------------------------------------------------------------------------- registration

_FEATURES = "fraction of features perturbed"
# (metric, higher is better, x axis of its curve ("" if it has none), description)
for _func, _higher, _curve_x, _description in (
    (faithfulness_correlation, True, "",
     "Quantus Pearson r of attribution sums vs output drops over random feature subsets (Bhatt et al.)"),
    (monotonicity_correlation, True, "",
     "Quantus Spearman rho of attribution vs output variance per feature group (Nguyen & Martínez)"),
    (pixel_flipping, False, _FEATURES,
     "Quantus area under the score curve as features are flipped most relevant first (Bach et al.)"),
    (region_perturbation, True, _FEATURES,
     "Quantus area under the score-drop curve as patches are removed, MoRF (Samek et al.)"),
    (selectivity, False, _FEATURES,
     "Quantus area under the score curve as patches are removed (Montavon et al.)"),
    (irof, True, _FEATURES,
     "Quantus area over the relative score curve as superpixels are removed"),
    (infidelity, False, "",
     "Quantus mean squared gap between output drops and attribution-weighted changes (Yeh et al.)"),
    (positive_perturbation, False, REMOVED,
     "Chefer et al.: area under the top-1 hit curve, most relevant pixels removed first"),
    (negative_perturbation, True, REMOVED,
     "Chefer et al.: area under the top-1 hit curve, least relevant pixels removed first"),
):  # fmt: skip
    _name = _func.__name__
    _column = Column(_name, higher_is_better=_higher, curve=_name if _curve_x else None, curve_x=_curve_x)
    register_metric(_name, _func, [_column], image_stats=takes_image_stats(_func), description=_description)
