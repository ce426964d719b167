"""Quantus's faithfulness family, batched: does removing what the map calls important change the output?

Faithfulness correlation, monotonicity correlation, pixel flipping, region perturbation, selectivity,
IROF and infidelity, each equal to Quantus 0.6.0 (Hedström et al., JMLR 2023) on the same inputs and
registered under its Quantus name in snake_case, with Quantus's parameter names and defaults; and
Chefer et al.'s positive / negative perturbation test (no Quantus counterpart).

The difference is the schedule: Quantus loops over steps, perturbs a NumPy copy of the batch, and runs
one forward per step; here every perturbed input (image × step × sample) is one row of
:func:`~camscope.metrics._common.score_batches`, built on the inputs' device only when its chunk runs.

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

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from camscope.core.errors import MetricInputError, warn
from camscope.core.targets import ClassifierOutputTarget, Target, TargetSpec, target_scores
from camscope.metrics import sampling
from camscope.metrics._common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ArrayLike,
    check_batch_size,
    check_inputs,
    resolve,
    score_batches,
    shared_forwards,
)
from camscope.metrics.deletion import make_substrate
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


# --------------------------------------------------------------------------- shared preparation


@dataclass
class _Setup:
    """What every metric of the family starts from."""

    attributions: np.ndarray  # (N, H, W) float32, normalised / absolute as asked
    targets: list[Target]
    clean: np.ndarray  # (N,) float64: the target's score on the clean image

    def features(self, channels: int) -> np.ndarray:
        """The maps broadcast over the channels and flattened: (N, C·H·W) float32, as Quantus's ``a_batch``."""
        a = self.attributions
        n = a.shape[0]
        return np.ascontiguousarray(np.broadcast_to(a[:, None], (n, channels, *a.shape[1:]))).reshape(n, -1)


def attributions(maps: torch.Tensor, abs: bool, normalise: bool) -> np.ndarray:
    """Quantus's preprocessing of the maps, per image: divide by the largest magnitude, then take |·|."""
    a = maps.numpy().astype(np.float32, copy=True)
    if normalise:
        peak = np.abs(a).max(axis=(1, 2), keepdims=True)
        a = np.divide(a, peak, out=a, where=peak > 0)
    return np.abs(a) if abs else a


def _setup(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec,
    batch_size: int,
    softmax: bool,
    abs: bool,
    normalise: bool,
) -> _Setup:
    maps_t = check_inputs(inputs, maps)
    assert maps_t is not None
    check_batch_size(batch_size)
    with shared_forwards(model):
        resolved, logits = resolve(model, inputs, targets, batch_size, probability=softmax)
    clean = target_scores(resolved, logits).double().cpu().numpy()
    return _Setup(attributions(maps_t, abs, normalise), resolved, clean)


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


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise MetricInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _features_in_step(value: object, pixels: int) -> int:
    step = _positive_int(value, "features_in_step")
    if pixels % step:
        raise MetricInputError(f"features_in_step={step} must divide the image's H·W = {pixels} pixels (as Quantus)")
    return step


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


def _cumulative_patches(
    model: nn.Module,
    inputs: torch.Tensor,
    setup: _Setup,
    patch_rank: torch.Tensor,
    grid: _Grid,
    n_steps: int,
    fill: torch.Tensor,
    batch_size: int,
) -> np.ndarray:
    """Scores (N, n_steps) after replacing the patches of rank < k + 1, for k = 0 .. n_steps − 1."""
    n, _, h, w = inputs.shape
    pixel_patch = grid.patch_of_pixel(h, w, inputs.device)
    pixel_rank = patch_rank.to(inputs.device)[:, pixel_patch]  # (N, H·W)
    items = [(i, k) for i in range(n) for k in range(n_steps)]

    def build(chunk: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, list[int]]:
        owners = [i for i, _ in chunk]
        limit = torch.tensor([k + 1 for _, k in chunk], device=inputs.device)
        hit = (pixel_rank[owners] < limit[:, None]).view(len(chunk), 1, h, w)
        return torch.where(hit, fill[owners].view(-1, 1, 1, 1), inputs[owners]), owners

    return score_batches(model, setup.targets, items, build, batch_size).reshape(n, n_steps)


def _patch_rank(order: np.ndarray) -> torch.Tensor:
    return _rank(order, torch.device("cpu"))


# --------------------------------------------------------------------------- the metrics


def faithfulness_correlation(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    nr_runs: int = 100,
    subset_size: int = 224,
    abs: bool = False,
    normalise: bool = True,
    perturb_baseline: Baseline = "black",
    softmax: bool = False,
    seed: int | None = None,
    batch_size: int = 64,
) -> FaithfulnessResult:
    """Faithfulness correlation (Bhatt et al., IJCAI 2020): higher is better.

    ``nr_runs`` times, a random ``subset_size`` of the C·H·W features is set to the baseline; the score
    is Pearson's r between the attribution summed over the subset and the drop of the target's score
    (the logit unless ``softmax``).
    """
    setup = _setup(model, inputs, maps, targets, batch_size, softmax, abs, normalise)
    n, c, h, w = inputs.shape
    runs = _positive_int(nr_runs, "nr_runs")
    k = _positive_int(subset_size, "subset_size")
    if k >= h * w:
        raise MetricInputError(f"subset_size={k} must be smaller than the image's H·W = {h * w} pixels (as Quantus)")
    fill = baseline_fill(inputs, perturb_baseline, (*FIXED_BASELINES, "uniform"))
    draws = sampling.Draws(seed, inputs.device)
    a = torch.from_numpy(setup.features(c)).to(inputs.device)
    x = inputs.reshape(n, -1)
    sums = np.empty(runs * n)
    items = [(pos, i) for pos, (_, i) in enumerate((r, i) for r in range(runs) for i in range(n))]

    def build(chunk: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, list[int]]:
        owners = [i for _, i in chunk]
        index = draws.subsets(len(chunk), c * h * w, k)
        rows = _row_fill(fill, owners, perturb_baseline, draws).expand(-1, k)
        sums[chunk[0][0] : chunk[-1][0] + 1] = a[owners].gather(1, index).sum(1).double().cpu().numpy()
        return x[owners].scatter(1, index, rows).view(len(chunk), c, h, w), owners

    perturbed = score_batches(model, setup.targets, items, build, batch_size).reshape(runs, n).T
    scores = pearson_rows(sums.reshape(runs, n).T, setup.clean[:, None] - perturbed, "faithfulness_correlation")
    return FaithfulnessResult("faithfulness_correlation", scores)


def monotonicity_correlation(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    eps: float = 1e-5,
    nr_samples: int = 100,
    features_in_step: int = 1,
    abs: bool = True,
    normalise: bool = True,
    perturb_baseline: Baseline = "uniform",
    softmax: bool = True,
    seed: int | None = None,
    batch_size: int = 64,
) -> FaithfulnessResult:
    """Monotonicity correlation (Nguyen & Martínez, 2020): higher is better.

    Features are taken ``features_in_step`` at a time in increasing order of attribution; each group
    alone is set to the baseline ``nr_samples`` times, and the score is Spearman's rho between the
    group's attribution and the mean squared change of the target's score divided by the clean score
    squared (not divided where |score| < ``eps``). A fixed baseline makes every sample the same: it
    is run once.
    """
    setup = _setup(model, inputs, maps, targets, batch_size, softmax, abs, normalise)
    n, c, h, w = inputs.shape
    step = _features_in_step(features_in_step, h * w)
    samples = _positive_int(nr_samples, "nr_samples")
    fill = baseline_fill(inputs, perturb_baseline, (*FIXED_BASELINES, "uniform"))
    if perturb_baseline != "uniform":
        samples = 1
    a = setup.features(c)
    order = np.argsort(a, axis=1)
    n_steps = a.shape[1] // step
    groups = np.take_along_axis(a, order, axis=1).reshape(n, n_steps, step).sum(axis=-1)
    group = _rank(order, inputs.device) // step
    draws = sampling.Draws(seed, inputs.device)
    x = inputs.reshape(n, -1)
    items = [(s, i) for s in range(n_steps) for _ in range(samples) for i in range(n)]

    def build(chunk: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, list[int]]:
        owners = [i for _, i in chunk]
        hit = group[owners] == torch.tensor([s for s, _ in chunk], device=inputs.device)[:, None]
        rows = _row_fill(fill, owners, perturb_baseline, draws)
        return torch.where(hit, rows, x[owners]).view(len(chunk), c, h, w), owners

    perturbed = score_batches(model, setup.targets, items, build, batch_size).reshape(n_steps, samples, n)
    y = setup.clean
    inverse = np.where(np.abs(y) >= eps, 1.0 / np.where(y == 0, 1.0, np.abs(y)), 1.0) ** 2
    variance = ((perturbed - y) ** 2).mean(axis=1).T * inverse[:, None]
    return FaithfulnessResult("monotonicity_correlation", spearman_rows(groups, variance, "monotonicity_correlation"))


def pixel_flipping(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    features_in_step: int = 1,
    abs: bool = False,
    normalise: bool = True,
    perturb_baseline: Baseline = "black",
    softmax: bool = True,
    batch_size: int = 64,
) -> FaithfulnessResult:
    """Pixel flipping (Bach et al., PLoS ONE 2015): lower is better.

    Features are set to the baseline ``features_in_step`` at a time in decreasing order of
    attribution, cumulatively; the curve is the target's score after each step and the score its
    area (trapezoid, x = step index: Quantus's ``return_auc_per_sample``).
    """
    setup = _setup(model, inputs, maps, targets, batch_size, softmax, abs, normalise)
    n, c, h, w = inputs.shape
    step = _features_in_step(features_in_step, h * w)
    fill = baseline_fill(inputs, perturb_baseline)
    a = setup.features(c)
    rank = _rank(np.argsort(-a, axis=1), inputs.device)
    n_steps = a.shape[1] // step
    x = inputs.reshape(n, -1)
    items = [(i, k) for i in range(n) for k in range(n_steps)]

    def build(chunk: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, list[int]]:
        owners = [i for i, _ in chunk]
        limit = torch.tensor([(k + 1) * step for _, k in chunk], device=inputs.device)
        hit = rank[owners] < limit[:, None]
        return torch.where(hit, fill[owners][:, None], x[owners]).view(len(chunk), c, h, w), owners

    curves = score_batches(model, setup.targets, items, build, batch_size).reshape(n, n_steps)
    fraction = [(k + 1) / n_steps for k in range(n_steps)]
    return FaithfulnessResult("pixel_flipping", trapezoid(curves), curves, fraction)


def region_perturbation(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    patch_size: int = 8,
    order: str = "morf",
    regions_evaluation: int = 100,
    abs: bool = False,
    normalise: bool = True,
    perturb_baseline: Baseline = "black",
    softmax: bool = True,
    seed: int | None = None,
    batch_size: int = 64,
) -> FaithfulnessResult:
    """Region perturbation (Samek et al., IEEE TNNLS 2017): with ``order="morf"`` higher is better.

    Square patches are set to the baseline one after another — most relevant first (``"morf"``), least
    relevant first (``"lerf"``) or in a random order — for the first ``regions_evaluation`` patches;
    the curve is the drop of the target's score after each and the score its area (trapezoid, x =
    step index).
    """
    setup = _setup(model, inputs, maps, targets, batch_size, softmax, abs, normalise)
    n, c, h, w = inputs.shape
    grid = _Grid.of(h, w, _positive_int(patch_size, "patch_size"))
    steps = min(_positive_int(regions_evaluation, "regions_evaluation"), grid.count)
    order = order.lower() if isinstance(order, str) else order
    if order == "morf":
        ranking = np.argsort(-grid.sums(setup.attributions, c), axis=-1)
    elif order == "lerf":
        ranking = np.argsort(grid.sums(setup.attributions, c), axis=-1)
    elif order == "random":
        ranking = sampling.Draws(seed, inputs.device).permutations(n, grid.count).cpu().numpy()
    else:
        raise MetricInputError(f"unknown order {order!r}: use 'morf', 'lerf' or 'random'")
    fill = baseline_fill(inputs, perturb_baseline)
    scores = _cumulative_patches(model, inputs, setup, _patch_rank(ranking), grid, steps, fill, batch_size)
    curves = setup.clean[:, None] - scores
    fraction = [(k + 1) / grid.count for k in range(steps)]
    return FaithfulnessResult("region_perturbation", trapezoid(curves), curves, fraction)


def selectivity(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    patch_size: int = 8,
    abs: bool = False,
    normalise: bool = True,
    perturb_baseline: Baseline = "black",
    softmax: bool = True,
    batch_size: int = 64,
) -> FaithfulnessResult:
    """Selectivity (Montavon et al., DSP 2018): lower is better.

    Every square patch is set to the baseline, most relevant first, cumulatively; the curve is the
    target's score after each patch and the score its area (trapezoid, x = step index).
    """
    setup = _setup(model, inputs, maps, targets, batch_size, softmax, abs, normalise)
    _, c, h, w = inputs.shape
    grid = _Grid.of(h, w, _positive_int(patch_size, "patch_size"))
    ranking = np.argsort(-grid.sums(setup.attributions, c), axis=-1)
    fill = baseline_fill(inputs, perturb_baseline)
    curves = _cumulative_patches(model, inputs, setup, _patch_rank(ranking), grid, grid.count, fill, batch_size)
    fraction = [(k + 1) / grid.count for k in range(grid.count)]
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


def irof(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    segmentation_method: str = "slic",
    abs: bool = False,
    normalise: bool = True,
    perturb_baseline: Baseline = "mean",
    softmax: bool = True,
    batch_size: int = 64,
) -> FaithfulnessResult:
    """Iterative Removal Of Features (Rieger & Hansen, 2020): higher is better.

    The image is cut into superpixels; they are set to the baseline, highest mean attribution first,
    cumulatively, and the curve is the target's score relative to the clean score. The score is the
    area *over* the curve, ``S − trapezoid(curve)`` for S segments. With ``"mean"`` each segment gets
    the mean of the image as it is when the segment is removed (Quantus recomputes it each step).
    All channels of a segment are replaced (Quantus 0.6.0's batched mask covers one channel and fails
    on RGB inputs).
    """
    setup = _setup(model, inputs, maps, targets, batch_size, softmax, abs, normalise)
    n, c, h, w = inputs.shape
    fixed = baseline_fill(inputs, perturb_baseline).double().cpu().numpy()
    images = inputs.detach().cpu().numpy()
    segment_rank, fills, counts = [], [], []
    for i in range(n):
        segments = superpixels(images[i], segmentation_method)
        count = len(np.unique(segments))
        if count < 2:
            raise MetricInputError(f"irof: the segmentation of image {i} has one segment; it needs at least two")
        a = np.broadcast_to(setup.attributions[i][None], (c, h, w))
        means = np.array([np.mean(a[:, segments == s]) for s in range(count)])
        order = np.argsort(-means)
        rank = np.empty(count, dtype=np.int64)
        rank[order] = np.arange(count)
        values = np.full(count, fixed[i])
        if perturb_baseline == "mean":
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

    flat = score_batches(model, setup.targets, items, build, batch_size)
    curves = np.full((n, max(counts)), np.nan)
    start = 0
    scores = np.empty(n)
    for i, count in enumerate(counts):
        curves[i, :count] = flat[start : start + count] / setup.clean[i]
        scores[i] = count - trapezoid(curves[i : i + 1, :count])[0]
        start += count
    fraction = [(k + 1) / curves.shape[1] for k in range(curves.shape[1])]
    return FaithfulnessResult("irof", scores, curves, fraction)


def infidelity(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    loss_func: str | Callable[[np.ndarray, np.ndarray], np.ndarray] = "mse",
    perturb_patch_sizes: Sequence[int] = (4,),
    n_perturb_samples: int = 10,
    abs: bool = False,
    normalise: bool = False,
    perturb_baseline: Baseline = "black",
    softmax: bool = False,
    batch_size: int = 64,
) -> FaithfulnessResult:
    """Infidelity (Yeh et al., NeurIPS 2019) as Quantus 0.6.0 computes it: lower is better.

    For each patch size, square patches are set to the baseline in raster order, cumulatively; at
    each step the drop of the target's score (the logit unless ``softmax``) is compared with
    ``Σ attribution · (x − x_perturbed)``, and the loss (mean squared difference over the steps, or
    ``loss_func(drops, sums)`` on (N, steps) arrays) is averaged over the patch sizes. Quantus repeats
    this ``n_perturb_samples`` times with the same deterministic perturbation, so the samples are
    all equal: it is computed once.
    """
    setup = _setup(model, inputs, maps, targets, batch_size, softmax, abs, normalise)
    n, _, h, w = inputs.shape
    _positive_int(n_perturb_samples, "n_perturb_samples")
    if loss_func == "mse":
        loss: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda p, q: ((p - q) ** 2).mean(axis=1)  # noqa: E731
    elif callable(loss_func):
        loss = loss_func
    else:
        raise MetricInputError(f"unknown loss_func {loss_func!r}: use 'mse' or a callable")
    sizes = [_positive_int(p, "perturb_patch_sizes entry") for p in perturb_patch_sizes]
    if not sizes:
        raise MetricInputError("perturb_patch_sizes is empty")
    fill = baseline_fill(inputs, perturb_baseline)
    # each pixel's contribution Σ_c a · (x − fill) when it is replaced, summed per patch then accumulated
    a = torch.from_numpy(setup.attributions).to(inputs.device, torch.float64)
    moved = (a * (inputs.double() - fill.double().view(-1, 1, 1, 1)).sum(dim=1)).reshape(n, -1)
    losses = []
    for size in sizes:
        grid = _Grid.of(h, w, size)
        raster = torch.arange(grid.count).expand(n, -1)
        drops = setup.clean[:, None] - _cumulative_patches(
            model, inputs, setup, raster, grid, grid.count, fill, batch_size
        )
        pixel_patch = grid.patch_of_pixel(h, w, inputs.device)
        per_patch = torch.zeros(n, grid.count, dtype=torch.float64, device=inputs.device)
        per_patch.index_add_(1, pixel_patch, moved)
        losses.append(np.asarray(loss(drops, per_patch.cumsum(dim=1).cpu().numpy()), dtype=np.float64))
    return FaithfulnessResult("infidelity", np.mean(losses, axis=0))


# --------------------------------------------------------------------------- Chefer et al.'s perturbation test

CHEFER_STEPS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class TopOneHit:
    """1.0 where ``category`` is the output's top-1 class, else 0.0 (a target scoring correctness)."""

    def __init__(self, category: int) -> None:
        self.category = category

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return (model_output.argmax(dim=-1) == self.category).double()


def _chefer(
    name: str,
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec,
    steps: Sequence[float],
    batch_size: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> FaithfulnessResult:
    """Top-1 hits after blacking out the ``int(H·W·p)`` most (positive) or least (negative) relevant
    pixels, for each fraction ``p`` of ``steps``; the score is the area under the hit curve."""
    maps_t = check_inputs(inputs, maps)
    assert maps_t is not None
    check_batch_size(batch_size)
    fractions = [float(p) for p in steps]
    if not fractions or any(not 0 <= p <= 1 for p in fractions):
        raise MetricInputError(f"{name}: steps must be fractions in [0, 1], got {list(steps)}")
    n, _, h, w = inputs.shape
    with shared_forwards(model):
        resolved, _ = resolve(model, inputs, targets, batch_size, probability=False)
    if any(type(t) is not ClassifierOutputTarget for t in resolved):
        raise MetricInputError(f"{name} needs class-index targets: it counts top-1 hits")
    hits = [TopOneHit(t.category) for t in resolved if isinstance(t, ClassifierOutputTarget)]
    black = make_substrate("black", inputs, mean, std)
    relevance = maps_t.reshape(n, -1) if name == "positive_perturbation" else -maps_t.reshape(n, -1)
    rank = _rank(torch.argsort(relevance, dim=1, descending=True, stable=True).numpy(), inputs.device)
    items = [(i, int(h * w * p)) for i in range(n) for p in fractions]

    def build(chunk: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, list[int]]:
        owners = [i for i, _ in chunk]
        limit = torch.tensor([k for _, k in chunk], device=inputs.device)
        hit = (rank[owners] < limit[:, None]).view(len(chunk), 1, h, w)
        return torch.where(hit, black[owners], inputs[owners]), owners

    curves = score_batches(model, hits, items, build, batch_size).reshape(n, len(fractions))
    area = np.trapezoid(curves, x=fractions, axis=1) if len(fractions) > 1 else curves[:, 0].copy()
    return FaithfulnessResult(name, area, curves, fractions)


def positive_perturbation(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    steps: Sequence[float] = CHEFER_STEPS,
    batch_size: int = 64,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> FaithfulnessResult:
    """Positive perturbation (Chefer, Gur & Wolf, CVPR 2021): lower is better.

    As their ViT evaluation code: for each fraction p of ``steps`` (10 % … 90 %), the ``int(H·W·p)``
    most relevant pixels are set to black (0 in image space, all channels) and the curve records
    whether the target class is still the top-1; the score is the area under that curve over p
    (trapezoid), so the batch mean is the area under their accuracy curve.
    """
    return _chefer("positive_perturbation", model, inputs, maps, targets, steps, batch_size, mean, std)


def negative_perturbation(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    steps: Sequence[float] = CHEFER_STEPS,
    batch_size: int = 64,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> FaithfulnessResult:
    """Negative perturbation (Chefer, Gur & Wolf, CVPR 2021): higher is better.

    :func:`positive_perturbation` with the least relevant pixels removed first (their ``vis = -vis``).
    """
    return _chefer("negative_perturbation", model, inputs, maps, targets, steps, batch_size, mean, std)


# --------------------------------------------------------------------------- registration

_COMMON = ("abs", "normalise", "perturb_baseline", "softmax", "batch_size")
_FEATURES = "fraction of features perturbed"
for _func, _higher, _params, _curve, _description in (
    (
        faithfulness_correlation,
        True,
        ("nr_runs", "subset_size", "seed"),
        False,
        "Pearson r of attribution sums vs output drops over random feature subsets (Bhatt et al.)",
    ),
    (
        monotonicity_correlation,
        True,
        ("eps", "nr_samples", "features_in_step", "seed"),
        False,
        "Spearman rho of attribution vs output variance per feature group (Nguyen & Martínez)",
    ),
    (
        pixel_flipping,
        False,
        ("features_in_step",),
        True,
        "area under the score curve as features are flipped most relevant first (Bach et al.)",
    ),
    (
        region_perturbation,
        True,
        ("patch_size", "order", "regions_evaluation", "seed"),
        True,
        "area under the score-drop curve as patches are removed, MoRF (Samek et al.)",
    ),
    (selectivity, False, ("patch_size",), True, "area under the score curve as patches are removed (Montavon et al.)"),
    (irof, True, ("segmentation_method",), True, "area over the relative score curve as superpixels are removed"),
    (
        infidelity,
        False,
        ("loss_func", "perturb_patch_sizes", "n_perturb_samples"),
        False,
        "mean squared gap between output drops and attribution-weighted changes (Yeh et al.)",
    ),
):
    _name = _func.__name__
    register_metric(
        _name,
        _func,
        [Column(_name, higher_is_better=_higher, curve=_name if _curve else None, curve_x=_FEATURES if _curve else "")],
        params=(*_params, *_COMMON),
        description=f"Quantus {_description}",
    )
_REMOVED = "fraction of pixels removed"
for _chefer_func, _higher, _order in (
    (positive_perturbation, False, "most"),
    (negative_perturbation, True, "least"),
):
    _name = _chefer_func.__name__
    register_metric(
        _name,
        _chefer_func,
        [Column(_name, higher_is_better=_higher, curve=_name, curve_x=_REMOVED)],
        params=("steps", "batch_size"),
        image_stats=True,
        description=f"Chefer et al.: area under the top-1 hit curve, {_order} relevant pixels removed first",
    )
