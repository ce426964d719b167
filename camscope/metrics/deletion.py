"""Perturbation metrics: deletion / insertion curves, average drop / increase, confidence change.

All of them change the input according to the map and read the model's score of the target again.
Deletion and insertion share one engine (:func:`_ranked_curves`): pixels are ranked by the map and
moved, ``step`` at a time, from a *start* image to a *finish* image; every intermediate image is one
row of a batch, built only when its chunk is run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch import Tensor, nn
from torch.nn import Module

from camscope.core.errors import MetricInputError, warn
from camscope.core.targets import Target, TargetSpec, target_scores
from camscope.metrics._common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    REMOVED,
    ArrayLike,
    channel_stats,
    check_inputs,
    image_logits,
    resolve,
    score_batches,
    shared_forwards,
)
from camscope.metrics.params import Batched, ImageStats, keywords, positive_int, takes_image_stats
from camscope.metrics.registry import Column, register_metric

Substrate = str | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- deletion / insertion


@dataclass
class CurveResult:
    """Deletion or insertion result.

    ``curves[i, k]`` is the target's score (softmax probability for class targets) after ``k`` steps,
    ``auc[i]`` the normalised area under it (trapezoid rule on x in [0, 1], as RISE's ``auc``).
    """

    name: str
    auc: np.ndarray
    curves: np.ndarray
    step: int

    def summary(self) -> dict[str, np.ndarray]:
        return {f"{self.name}_auc": self.auc}

    def curve_points(self, pixels: int) -> dict[str, tuple[list[float], np.ndarray]]:
        """The curves keyed by their column, with x = the fraction of an image's ``pixels`` changed."""
        x = [min(1.0, i * self.step / pixels) for i in range(self.curves.shape[1])]
        return {f"{self.name}_auc": (x, self.curves)}


@dataclass(frozen=True)
class Scoring(Batched):
    """The RISE / Grad-CAM++ / pytorch-grad-cam metrics' keywords: 32 inputs per forward."""

    batch_size: int = 32


@dataclass(frozen=True)
class Deletion(ImageStats, Scoring):
    """Deletion's keywords: ``step`` pixels per step (None: the image width) moved to the ``substrate``."""

    step: int | None = None
    substrate: Substrate = "zeros"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.step is not None:
            positive_int(self.step, "step")


@dataclass(frozen=True)
class Insertion(Deletion):
    """Insertion's keywords: as deletion's, starting from RISE's blurred image."""

    substrate: Substrate = "blur"


@keywords(Deletion)
def deletion(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Deletion = Deletion()
) -> CurveResult:
    """Deletion metric (Petsiuk et al., "RISE", BMVC 2018): lower AUC is better.

    Pixels are removed in decreasing order of the map, ``step`` per step (default: the image width),
    replaced by the ``substrate``; ``curves[:, k]`` is the target's probability once ``k·step`` pixels
    are gone, for ``k = 0 .. ceil(H·W / step)``, and ``auc = (Σ_k c_k − (c_0 + c_K)/2) / K``.

    The default substrate is RISE's: zeros of the *normalised* input tensor (the dataset mean
    colour). Other substrates: ``"black"`` (black in image space, using ``mean``/``std``), ``"blur"``,
    ``"mean"`` (each image's channel means), a tensor broadcastable to the inputs, or a callable
    ``inputs -> substrate``. Equal map values are ranked in raster order (a stable sort), so the
    result is deterministic; a constant map removes pixels row by row from the top left.
    """
    finish = make_substrate(p.substrate, inputs, p.mean, p.std)
    return _ranked_curves("deletion", model, inputs, maps, targets, inputs, finish, p)


@keywords(Insertion)
def insertion(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Insertion = Insertion()
) -> CurveResult:
    """Insertion metric (Petsiuk et al., "RISE", BMVC 2018): higher AUC is better.

    Starts from the ``substrate`` (default RISE's: a Gaussian blur of the input, kernel 11, sigma 5,
    on the normalised tensor) and inserts the input's pixels in decreasing order of the map, ``step``
    per step. Curve, AUC, tie order and substrate options as in :func:`deletion`.
    """
    start = make_substrate(p.substrate, inputs, p.mean, p.std)
    return _ranked_curves("insertion", model, inputs, maps, targets, start, inputs, p)


def _ranked_curves(
    name: str,
    model: Module,
    inputs: Tensor,
    maps: ArrayLike,
    targets: TargetSpec,
    start: Tensor,
    finish: Tensor,
    p: Deletion,
) -> CurveResult:
    """The one engine of deletion and insertion: move ranked pixels from ``start`` to ``finish``."""
    maps_t = check_inputs(inputs, maps)
    assert maps_t is not None
    n, _, h, w = inputs.shape
    step = w if p.step is None else int(p.step)
    n_steps = -(-h * w // step)

    # rank[i, p] = position of pixel p in image i's removal order (stable: ties in raster order)
    order = torch.argsort(maps_t.reshape(n, -1), dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w).expand(n, -1).contiguous())
    rank = rank.to(inputs.device).view(n, 1, h, w)

    # The first and last points are the start and finish images themselves, whatever the map: they go
    # through the forward memo (this call's clean forward; a sweep's other methods), only the steps
    # between them are built and scored here.
    with shared_forwards(model):
        resolved, _ = resolve(model, inputs, targets, p.batch_size, probability=True)
        curves = np.empty((n, n_steps + 1))
        for k, ends in ((0, start), (n_steps, finish)):
            curves[:, k] = target_scores(resolved, image_logits(model, ends, p.batch_size)).double().cpu().numpy()
    limits = [k * step for k in range(1, n_steps)]
    if limits:
        curves[:, 1:-1] = replace_ranked(model, resolved, start, finish, rank, limits, p.batch_size)
    return CurveResult(name=name, auc=normalised_auc(curves), curves=curves, step=step)


def replace_ranked(
    model: Module,
    targets: Sequence[Target],
    start: Tensor,
    finish: Tensor,
    rank: Tensor,
    limits: Sequence[int],
    batch_size: int,
) -> np.ndarray:
    """Scores (N, len(limits)) of ``start`` with the elements of rank below each limit taken from
    ``finish`` (the rows of :func:`ranked_rows`)."""
    items, build = ranked_rows(start, finish, rank, limits)
    return score_batches(model, targets, items, build, batch_size).reshape(start.shape[0], len(limits))


def ranked_rows(
    start: Tensor, finish: Tensor, rank: Tensor, limits: Sequence[int]
) -> tuple[list[tuple[int, int]], Callable[[Sequence[tuple[int, int]]], tuple[Tensor, list[int]]]]:
    """The rows of every metric that removes (or inserts) features cumulatively in ranked order —
    deletion / insertion, pixel flipping, region perturbation, selectivity, infidelity, Chefer et al.'s
    test: items (image i, step k) and the ``build`` of :func:`~camscope.metrics._common.score_batches`.

    Row (i, k) is ``start[i]`` with the elements of rank below ``limits[k]`` taken from ``finish[i]``.
    ``rank`` (N, 1 or C, H, W) is each element's position in its image's order (the pixels of a patch
    share the patch's); ``start`` (N, C, H, W) and ``finish`` broadcast against it (a per-image fill
    value is (N, 1, 1, 1)).
    """
    n, steps = start.shape[0], len(limits)
    items = [(i, k) for i in range(n) for k in range(steps)]
    thresholds = torch.as_tensor(list(limits), device=rank.device).view(-1, 1, 1, 1)

    def build(chunk: Sequence[tuple[int, int]]) -> tuple[Tensor, list[int]]:
        owners = [i for i, _ in chunk]
        first, last = chunk[0][0], chunk[-1][0]
        if chunk[0][1] == 0 and chunk[-1][1] == steps - 1:
            # whole images (the usual chunk): every step of each, broadcast against the image once,
            # where gathering the rows' images would copy each of them ``steps`` times first
            span = slice(first, last + 1)
            hit = rank[span, None] < thresholds
            rows = torch.where(hit, finish[span, None], start[span, None])
            return rows.reshape(-1, *start.shape[1:]), owners
        index = torch.tensor(owners, device=rank.device)
        limit = thresholds[[k for _, k in chunk]]
        return torch.where(rank[index] < limit, finish[index], start[index]), owners

    return items, build


def normalised_auc(curves: np.ndarray) -> np.ndarray:
    """Trapezoid area under each curve with x spread evenly over [0, 1] (RISE's ``auc``)."""
    k = curves.shape[-1] - 1
    if k == 0:
        return curves[..., 0].copy()
    area: np.ndarray = (curves.sum(-1) - curves[..., 0] / 2 - curves[..., -1] / 2) / k
    return area


def rise_blur_kernel(size: int = 11, sigma: float = 5.0) -> np.ndarray:
    """RISE's ``gkern``: a unit impulse filtered by ``scipy.ndimage.gaussian_filter`` (reflect mode)."""
    impulse = np.zeros((size, size))
    impulse[size // 2, size // 2] = 1
    kernel: np.ndarray = gaussian_filter(impulse, sigma)
    return kernel


def gaussian_blur(inputs: torch.Tensor, size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Per-channel blur with RISE's kernel and zero padding, as RISE's insertion substrate."""
    c = inputs.shape[1]
    kernel = torch.as_tensor(rise_blur_kernel(size, sigma), dtype=inputs.dtype, device=inputs.device)
    weight = kernel.expand(c, 1, size, size).contiguous()
    with torch.no_grad():
        return nn.functional.conv2d(inputs, weight, padding=size // 2, groups=c)


def make_substrate(
    substrate: Substrate, inputs: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """The substrate image for every input, shape (N, C, H, W)."""
    check_inputs(inputs)
    if isinstance(substrate, torch.Tensor):
        try:
            return substrate.to(inputs.device, inputs.dtype).expand_as(inputs)
        except RuntimeError as exc:
            raise MetricInputError(
                f"substrate of shape {tuple(substrate.shape)} does not broadcast to {tuple(inputs.shape)}"
            ) from exc
    if callable(substrate):
        out = substrate(inputs)
        if not isinstance(out, torch.Tensor) or out.shape != inputs.shape:
            raise MetricInputError("a substrate callable must return a tensor shaped like the inputs")
        return out
    if substrate == "zeros":
        return torch.zeros_like(inputs)
    if substrate == "blur":
        return gaussian_blur(inputs)
    if substrate == "mean":
        return inputs.mean(dim=(2, 3), keepdim=True).expand_as(inputs)
    if substrate == "black":
        m, s = channel_stats(inputs, mean, std)
        return ((0 - m) / s).expand_as(inputs)
    raise MetricInputError(
        f"unknown substrate {substrate!r}: use 'zeros', 'blur', 'mean', 'black', a tensor or a callable"
    )


# --------------------------------------------------------------------------- explanation-map products


@dataclass
class AverageDropResult:
    """Average drop / increase in confidence (Grad-CAM++).

    Per image: ``drop = max(0, Y − O) / Y`` and ``increase = O > Y`` with Y the target's softmax
    probability on the image and O on the explanation image. ``average_drop`` and
    ``increase_in_confidence`` are the paper's percentages over the batch.
    """

    drop: np.ndarray
    increase: np.ndarray
    scores: np.ndarray
    explanation_scores: np.ndarray
    space: str

    @property
    def average_drop(self) -> float:
        return float(100 * self.drop.mean())

    @property
    def increase_in_confidence(self) -> float:
        return float(100 * self.increase.mean())

    def summary(self) -> dict[str, np.ndarray]:
        return {"avg_drop": 100 * self.drop, "increase": 100 * self.increase.astype(np.float64)}


def explanation_images(
    inputs: torch.Tensor,
    maps: torch.Tensor,
    space: str,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """``E = map ⊙ image``, as a normalised tensor ready for the model.

    ``space="image"`` (the Grad-CAM++ paper): the product is taken on the unnormalised image, so
    removed pixels become black. ``space="normalized"`` (pytorch-grad-cam): the product is taken on
    the normalised tensor, so removed pixels become the dataset mean colour.
    """
    weights = maps.to(inputs.device, inputs.dtype)[:, None]
    if space == "normalized":
        return inputs * weights
    if space == "image":
        m, s = channel_stats(inputs, mean, std)
        return ((inputs * s + m) * weights - m) / s
    raise MetricInputError(f"unknown space {space!r}: use 'image' (the paper's) or 'normalized'")


@dataclass(frozen=True)
class AverageDrop(ImageStats, Scoring):
    """Average drop's keywords: the ``space`` the explanation image is made in."""

    space: str = "image"


@keywords(AverageDrop)
def average_drop_increase(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: AverageDrop = AverageDrop()
) -> AverageDropResult:
    """Average Drop and Increase in Confidence (Chattopadhyay et al., "Grad-CAM++", WACV 2018).

    ``E = map ⊙ image`` (see :func:`explanation_images` for ``space``); Y = softmax score of the
    target on the image, O on E; ``drop = max(0, Y − O) / Y``, ``increase = [O > Y]``. A Y of exactly
    0 (softmax underflow) gives drop 0, never NaN; a negative Y (a raw score: a segmentation region's
    summed logits) too, with a warning naming the images. A constant map of ones leaves the image
    unchanged (drop 0, no increase); a map of zeros turns it black (``space="image"``) or mean grey.
    """
    maps_t = check_inputs(inputs, maps)
    assert maps_t is not None
    resolved, logits = resolve(model, inputs, targets, p.batch_size, probability=True)
    explained = explanation_images(inputs, maps_t, p.space, p.mean, p.std)
    y = target_scores(resolved, logits).double().cpu().numpy()
    negative = [i for i, value in enumerate(y) if value < 0]
    if negative:  # a raw score (a segmentation region's summed logits): a drop is a fraction of a positive one
        warn("average drop: the target's clean score is negative (not a probability): its drop reads 0", negative)
    o = _score_rows(model, resolved, explained, p.batch_size)
    drop = np.where(y > 0, np.maximum(0.0, y - o) / np.where(y > 0, y, 1.0), 0.0)
    return AverageDropResult(drop=drop, increase=o > y, scores=y, explanation_scores=o, space=p.space)


@dataclass
class ConfidenceChangeResult:
    """``change[i] = target(model(x_i ⊙ map_i)) − target(model(x_i))`` (float32, as pytorch-grad-cam)."""

    change: np.ndarray

    def summary(self) -> dict[str, np.ndarray]:
        return {"confidence_change": self.change.astype(np.float64)}


@keywords(Scoring)
def confidence_change(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Scoring = Scoring()
) -> ConfidenceChangeResult:
    """pytorch-grad-cam's ``CamMultImageConfidenceChange``, batched.

    ``target(model(x ⊙ map)) − target(model(x))`` with the product on the *normalised* tensor and the
    target applied to the raw output (a ClassifierOutputTarget scores the logit), exactly as
    pytorch-grad-cam 1.5.7 computes it; its DropInConfidence is ``max(0, −change)`` and
    IncreaseInConfidence ``change > 0``.
    """
    maps_t = check_inputs(inputs, maps)
    assert maps_t is not None
    resolved, logits = resolve(model, inputs, targets, p.batch_size, probability=False)
    before = target_scores(resolved, logits).cpu().numpy().astype(np.float32)
    after = _score_rows(model, resolved, explanation_images(inputs, maps_t, "normalized"), p.batch_size)
    return ConfidenceChangeResult(change=after.astype(np.float32) - before)


def _score_rows(model: nn.Module, targets: Sequence[Target], batch: torch.Tensor, batch_size: int) -> np.ndarray:
    """Score row i of ``batch`` with ``targets[i]``."""

    def build(chunk: Sequence[int]) -> tuple[torch.Tensor, Sequence[int]]:
        return batch[chunk[0] : chunk[-1] + 1], chunk

    return score_batches(model, targets, range(batch.shape[0]), build, batch_size)


# (name, metric, its columns, description)
for _name, _func, _columns, _description in (
    ("deletion", deletion, [Column("deletion_auc", False, "deletion", REMOVED)], "RISE deletion AUC (lower is better)"),
    ("insertion", insertion, [Column("insertion_auc", True, "insertion", "fraction of pixels inserted")],
     "RISE insertion AUC (higher is better)"),
    ("avgdrop", average_drop_increase, [Column("avg_drop", False), Column("increase", True)],
     "Grad-CAM++ average drop / increase in %"),
    ("confidence_change", confidence_change, [Column("confidence_change", True)], "pytorch-grad-cam's CamMult change"),
):  # fmt: skip
    register_metric(_name, _func, _columns, image_stats=takes_image_stats(_func), description=_description)
