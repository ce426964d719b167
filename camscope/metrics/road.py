"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci, Kasneci, ICML 2022).

Pixels are removed in the map's order — most relevant first (MoRF, lower is better) or least
relevant first (LeRF, higher is better) — and filled by noisy linear imputation
(:mod:`camscope.metrics.imputation`), which leaks far less of the removed shape than a constant fill.
The curves are the target's score at each removal percentage; ``combined = (mean LeRF − mean MoRF) / 2``
(pytorch-grad-cam's ROADCombined, higher is better).

Two behaviours, chosen with ``compat``:

* ``compat=None`` (default) — the official code (github.com/tleemann/road_evaluation): the map is
  min-max normalised, a tiny seeded noise ``1e-4 · N(0, 1)`` (one field per call, shared by the images,
  as the official dataset draws one) breaks ties, and exactly ``int(H·W·p)`` pixels are removed. The
  imputation runs on the unnormalised image ``x · std + mean`` (noise 0.01 in [0, 1] units), which is
  then normalised again; the score is the target's softmax probability. ``percentages`` are the
  fraction *removed* for both orders (the official code's LeRF ``th_p`` is the fraction kept: its
  ``th_p = 0.3`` is our LeRF 70 %).
* ``compat="pytorch-grad-cam"`` — pytorch-grad-cam 1.5.7's ROADMostRelevantFirst /
  ROADLeastRelevantFirst / ROADCombined value for value: ``percentiles`` p keep the pixels whose map
  value is below ``np.percentile(map, p)`` (MoRF; LeRF uses ``1 − map``), so with ties it removes more
  than ``100 − p`` % (on a map that is 60 % zeros, its LeRF "remove 10 %" removes 60 %); imputation on
  the normalised tensor; the score is the target applied to the raw output (a logit for
  ClassifierOutputTarget) minus its value on the clean image. With the same ``seed`` given to
  ``torch.manual_seed`` before pytorch-grad-cam's ROADCombined, the imputed images are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import Module

from camscope.core.errors import MetricInputError
from camscope.core.targets import TargetSpec, target_scores
from camscope.metrics._common import (
    REMOVED,
    ArrayLike,
    channel_stats,
    check_inputs,
    resolve,
    score_batches,
)
from camscope.metrics.imputation import NEIGHBOUR_WEIGHTS, impute_batch
from camscope.metrics.params import Batched, ImageStats, keywords
from camscope.metrics.perturbation_confidence import (
    AveragerAcrossThresholds,
    PerturbationConfidenceMetric,
    RemoveLeastRelevantFirst,
    RemoveMostRelevantFirst,
    maps_array,
    percentile_keep,
)
from camscope.metrics.registry import Column, register_metric

DEFAULT_PERCENTAGES: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)
ORDERS: tuple[str, ...] = ("lerf", "morf")  # pytorch-grad-cam's ROADCombined runs LeRF first


@dataclass
class RoadResult:
    """ROAD curves (N, P) per order and their means (N,); ``combined = (lerf − morf) / 2``."""

    percentages: tuple[float, ...]
    morf_curves: np.ndarray | None
    lerf_curves: np.ndarray | None
    compat: str | None

    @property
    def morf(self) -> np.ndarray | None:
        return None if self.morf_curves is None else self.morf_curves.mean(axis=1)

    @property
    def lerf(self) -> np.ndarray | None:
        return None if self.lerf_curves is None else self.lerf_curves.mean(axis=1)

    @property
    def combined(self) -> np.ndarray | None:
        if self.morf is None or self.lerf is None:
            return None
        combined: np.ndarray = (self.lerf - self.morf) / 2
        return combined

    def summary(self) -> dict[str, np.ndarray]:
        out = {"road_morf": self.morf, "road_lerf": self.lerf, "road_combined": self.combined}
        return {k: v for k, v in out.items() if v is not None}

    def curve_points(self, pixels: int) -> dict[str, tuple[list[float], np.ndarray]]:
        """The curves keyed by their column, with x = the fraction of pixels imputed."""
        x = [p / 100 for p in self.percentages]
        curves = {"road_morf": self.morf_curves, "road_lerf": self.lerf_curves}
        return {k: (x, v) for k, v in curves.items() if v is not None}


@dataclass(frozen=True)
class Road(ImageStats, Batched):
    """ROAD's keywords (see :func:`road`); the percentages, orders and mode are checked here."""

    percentages: Sequence[float] = DEFAULT_PERCENTAGES
    orders: Sequence[str] = ORDERS
    compat: str | None = None
    noise: float = 0.01
    seed: int = 0
    batch_size: int = 32
    workers: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.compat not in (None, "pytorch-grad-cam"):
            raise MetricInputError(f"unknown compat {self.compat!r}: use None or 'pytorch-grad-cam'")
        unknown = [o for o in self.orders if o not in ORDERS]
        if unknown or not self.orders:
            raise MetricInputError(f"unknown ROAD orders {unknown or self.orders}: use 'morf' and/or 'lerf'")
        if not self.percentages or any(not 0 <= float(q) < 100 for q in self.percentages):
            raise MetricInputError(f"ROAD percentages must lie in [0, 100), got {list(self.percentages)}")


@keywords(Road)
def road(model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec = None, p: Road = Road()) -> RoadResult:
    """ROAD MoRF / LeRF curves at ``percentages`` (in %) and their combination; see the module doc.

    ``noise`` is the imputation noise (0 switches it off), ``seed`` seeds it and the tie-breaking noise,
    ``workers`` the threads solving imputation systems. A constant map has a defined result: in the
    default mode the tie-breaking noise orders it (seeded), in compat mode it keeps nothing (every
    pixel is imputed) and the imputed image is the mean colour plus noise, where pytorch-grad-cam's
    singular solve gives NaN.
    """
    return road_with_generator(model, inputs, maps, targets, p, torch.Generator().manual_seed(p.seed))


def road_with_generator(
    model: Module, inputs: Tensor, maps: ArrayLike, targets: TargetSpec, p: Road, generator: torch.Generator
) -> RoadResult:
    """:func:`road` drawing its noise from ``generator`` (pytorch-grad-cam's classes: torch's global one)."""
    maps_t = check_inputs(inputs, maps)
    assert maps_t is not None
    compat, noise, workers = p.compat, p.noise, p.workers
    pcts = tuple(float(q) for q in p.percentages)
    n = inputs.shape[0]
    resolved, logits = resolve(model, inputs, targets, p.batch_size, probability=compat is None)
    todo = [o for o in ORDERS if o in p.orders]
    if compat is None:
        keep = _official_keep(maps_t, pcts, todo, generator)
    else:
        keep = _pytorch_grad_cam_keep(maps_t, pcts, todo)
    # one item per (order, percentage, image), in pytorch-grad-cam's loop order (its noise order)
    items = [(o, k, i) for o in todo for k in range(len(pcts)) for i in range(n)]
    m, s = channel_stats(inputs, p.mean, p.std)

    def build(chunk: Sequence[tuple[str, int, int]]) -> tuple[torch.Tensor, list[int]]:
        owners = [i for _, _, i in chunk]
        x = inputs[owners]
        masks = torch.stack([keep[o][k, i] for o, k, i in chunk])
        if compat is None:
            imputed = impute_batch(x * s + m, masks, noise=noise, generator=generator, workers=workers)
            imputed = (imputed.to(inputs.device, inputs.dtype) - m) / s
        else:
            imputed = impute_batch(x, masks, noise=noise, generator=generator, workers=workers)
            imputed = imputed.to(inputs.device, inputs.dtype)
        return imputed, owners

    scores = score_batches(model, resolved, items, build, p.batch_size)
    curves: dict[str, np.ndarray] = {}
    for j, o in enumerate(todo):
        block = scores[j * len(pcts) * n : (j + 1) * len(pcts) * n].reshape(len(pcts), n).T
        if compat is not None:  # pytorch-grad-cam: float32 differences to the clean score
            clean = target_scores(resolved, logits).cpu().numpy().astype(np.float32)
            block = block.astype(np.float32) - clean[:, None]
        curves[o] = block
    return RoadResult(pcts, curves.get("morf"), curves.get("lerf"), compat)


def _official_keep(
    maps: torch.Tensor, pcts: Sequence[float], orders: Sequence[str], generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Keep masks (P, N, H, W) per order, as the official ImputedDataset builds them."""
    n, h, w = maps.shape
    flat = maps.reshape(n, -1).double()
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    ranked = (flat - lo) / (hi - lo + 1e-5) + 1e-4 * torch.randn(h * w, generator=generator, dtype=torch.float64)
    order = torch.argsort(ranked, dim=1, descending=True, stable=True)
    out = {}
    for o in orders:
        masks = torch.ones(len(pcts), n, h * w, dtype=torch.bool)
        for k, p in enumerate(pcts):
            count = int(h * w * p / 100)
            removed = order[:, :count] if o == "morf" else order[:, h * w - count :]
            masks[k].scatter_(1, removed, False)
        out[o] = masks.reshape(len(pcts), n, h, w)
    return out


def _pytorch_grad_cam_keep(maps: torch.Tensor, pcts: Sequence[float], orders: Sequence[str]) -> dict[str, torch.Tensor]:
    """Keep masks of pytorch-grad-cam's RemoveMostRelevantFirst / RemoveLeastRelevantFirst."""
    out = {}
    for o in orders:
        values = maps if o == "morf" else 1 - maps
        masks = torch.empty(len(pcts), *maps.shape, dtype=torch.bool)
        for k, p in enumerate(pcts):
            for i in range(maps.shape[0]):
                masks[k, i] = percentile_keep(values[i], p)
        out[o] = masks
    return out


register_metric(
    "road",
    road,
    [
        Column("road_morf", higher_is_better=False, curve="road_morf", curve_x=REMOVED + " (imputed)"),
        Column("road_lerf", higher_is_better=True, curve="road_lerf", curve_x=REMOVED + " (imputed)"),
        Column("road_combined", higher_is_better=True),
    ],
    image_stats=True,
    description="ROAD MoRF / LeRF / combined",
)


# ---------------------------------------------------------------------------- pytorch-grad-cam's ROAD classes
#: pytorch-grad-cam's name for the imputation's neighbour weights
neighbors_weights = list(NEIGHBOUR_WEIGHTS)


class NoisyLinearImputer:
    """``imputer(img (C, H, W), mask (H, W))``: the pixels where ``mask`` is 0 replaced by noisy linear
    imputation (:func:`camscope.metrics.imputation.impute_batch`), noise drawn from torch's global generator."""

    def __init__(
        self, noise: float = 0.01, weighting: Sequence[tuple[tuple[int, int], float]] = NEIGHBOUR_WEIGHTS
    ) -> None:
        if tuple(weighting) != NEIGHBOUR_WEIGHTS:
            raise MetricInputError("NoisyLinearImputer supports ROAD's neighbour weights only (as pytorch-grad-cam)")
        self.noise = noise
        self.weighting = NEIGHBOUR_WEIGHTS

    def __call__(self, img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = torch.as_tensor(mask).reshape(img.shape[-2:]) > 0.5
        return impute_batch(img[None], keep[None], noise=self.noise)[0].to(img.dtype)


class ROADMostRelevantFirst(PerturbationConfidenceMetric):
    """ROAD MoRF at one ``percentile``: the pixels at or above it are imputed (see the module doc's compat mode)."""

    def __init__(self, percentile: float | str = 80) -> None:
        super().__init__(RemoveMostRelevantFirst(percentile, NoisyLinearImputer()))


class ROADLeastRelevantFirst(PerturbationConfidenceMetric):
    """ROAD LeRF at one ``percentile`` of ``1 − map``."""

    def __init__(self, percentile: float | str = 20) -> None:
        super().__init__(RemoveLeastRelevantFirst(percentile, NoisyLinearImputer()))


class _ROADAverage(AveragerAcrossThresholds):
    """Mean over percentiles, computed by :func:`road` (compat mode) in one batched run with the same draws."""

    order = "morf"

    def __call__(self, input_tensor: torch.Tensor, cams: object, targets: TargetSpec, model: nn.Module) -> np.ndarray:
        result = _peer_road(input_tensor, cams, targets, model, self.percentiles, (self.order,))
        curve = result.morf if self.order == "morf" else result.lerf
        assert curve is not None
        return curve.astype(np.float32)


class ROADMostRelevantFirstAverage(_ROADAverage):
    """:class:`ROADMostRelevantFirst` averaged over ``percentiles``."""

    order = "morf"

    def __init__(self, percentiles: Sequence[float] = DEFAULT_PERCENTAGES) -> None:
        super().__init__(ROADMostRelevantFirst, percentiles)


class ROADLeastRelevantFirstAverage(_ROADAverage):
    """:class:`ROADLeastRelevantFirst` averaged over ``percentiles``."""

    order = "lerf"

    def __init__(self, percentiles: Sequence[float] = DEFAULT_PERCENTAGES) -> None:
        super().__init__(ROADLeastRelevantFirst, percentiles)


class ROADCombined:
    """``(LeRF average − MoRF average) / 2`` over ``percentiles`` (higher is better)."""

    def __init__(self, percentiles: Sequence[float] = DEFAULT_PERCENTAGES) -> None:
        self.percentiles = list(percentiles)
        self.morf_averager = ROADMostRelevantFirstAverage(percentiles)
        self.lerf_averager = ROADLeastRelevantFirstAverage(percentiles)

    def __call__(self, input_tensor: torch.Tensor, cams: object, targets: TargetSpec, model: nn.Module) -> np.ndarray:
        result = _peer_road(input_tensor, cams, targets, model, self.percentiles, ORDERS)
        assert result.combined is not None
        return result.combined.astype(np.float32)


def _peer_road(
    inputs: torch.Tensor,
    cams: object,
    targets: TargetSpec,
    model: nn.Module,
    percentiles: Sequence[float],
    orders: Sequence[str],
) -> RoadResult:
    maps = torch.from_numpy(np.float32(maps_array(cams)))
    p = Road(
        percentages=tuple(percentiles), orders=tuple(orders), compat="pytorch-grad-cam", batch_size=max(1, len(inputs))
    )
    return road_with_generator(model, inputs, maps, targets, p, torch.default_generator)
