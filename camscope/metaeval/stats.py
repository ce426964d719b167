"""The statistics of the meta-evaluation: rank agreement, bootstrap intervals, discrimination, consistency.

Pure numpy on small arrays (a few dozen images × a few dozen maps), so each piece can be checked by hand:
Kendall's τ-b against scipy, the bootstrap's coverage on data with a known mean, the discrimination rule
on three numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's τ-b of two score vectors (ties in either corrected for); NaN when either is constant.

    τ-b = (C − D) / √((n₀ − t_a)(n₀ − t_b)) with C, D the concordant and discordant pairs, n₀ = n(n−1)/2
    and t_a, t_b the pairs tied in ``a``, in ``b``. Why our own: it runs thousands of times inside the
    bootstrap on ~20 items, where the O(n²) sign matrix is faster than scipy's per-call overhead.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"kendall_tau needs two vectors of one length, got {a.shape} and {b.shape}")
    upper = np.triu_indices(len(a), k=1)
    sa = np.sign(a[:, None] - a[None, :])[upper]
    sb = np.sign(b[:, None] - b[None, :])[upper]
    pairs_a, pairs_b = np.count_nonzero(sa), np.count_nonzero(sb)
    if pairs_a == 0 or pairs_b == 0:
        return float("nan")
    return float((sa * sb).sum() / np.sqrt(float(pairs_a) * float(pairs_b)))


@dataclass(frozen=True)
class Interval:
    """A statistic on the full sample and the percentile bootstrap interval (``level``) around it."""

    value: float
    low: float
    high: float
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.value:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def bootstrap_interval(
    n: int,
    statistic: Callable[[np.ndarray], float],
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """``statistic(indices)`` on all ``n`` items, with the percentile bootstrap interval over items.

    ``statistic`` receives an index array (length ``n``, drawn with replacement) so that several arrays
    indexed by the same items — per-image scores of every map, the ground truth — are resampled together.
    Resamples whose statistic is NaN (e.g. a constant resample) are dropped; with none left the interval is
    NaN.
    """
    if n < 1:
        raise ValueError("bootstrap_interval needs at least one item")
    full = float(statistic(np.arange(n)))
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)], dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return Interval(full, float("nan"), float("nan"), level)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(full, float(low), float(high), level)


def discriminates(oracle: float, random: float, inverse: float) -> bool:
    """Whether oriented scores (higher = better) put the true mask strictly above a random map, and a random
    map strictly above the mask's inverse; a tie or a NaN fails — a metric that cannot separate the known
    answer from noise does not discriminate."""
    return bool(oracle > random > inverse)


def signed_rank_p(before: np.ndarray, after: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired scores; 1.0 when they are identical (no evidence of
    a change), NaN with fewer than two pairs."""
    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    keep = np.isfinite(before) & np.isfinite(after)
    before, after = before[keep], after[keep]
    if len(before) < 2:
        return float("nan")
    if np.allclose(before, after, rtol=0, atol=1e-12):
        return 1.0
    return float(stats.wilcoxon(before, after, zero_method="zsplit").pvalue)


def order_agreement(before: np.ndarray, after: np.ndarray) -> float:
    """Mean over images of the fraction of map pairs kept in the same order: ``(1 + τ-b) / 2`` per image.

    ``before``/``after``: oriented scores (images, maps). Images whose scores are constant in either
    condition are left out (their order says nothing); NaN when none is left.
    """
    values = [kendall_tau(b, a) for b, a in zip(np.asarray(before), np.asarray(after))]
    finite = [v for v in values if np.isfinite(v)]
    return float((1 + np.mean(finite)) / 2) if finite else float("nan")


@dataclass(frozen=True)
class Consistency:
    """MetaQuantus's four consistency scores of one metric, each in [0, 1], higher is better.

    IAC (intra-consistency): per map, the Wilcoxon p-value between clean and perturbed per-image scores —
    kept high under a minor perturbation (``iac_nr``), its complement ``1 − p`` high under a disruptive
    one (``iac_ar``). IEC (inter-consistency): the fraction of map pairs whose order is kept — high under a
    minor perturbation (``iec_nr``), low under a disruptive one (``iec_ar`` = 1 − kept).
    """

    iac_nr: float
    iec_nr: float
    iac_ar: float
    iec_ar: float

    @property
    def noise_resilience(self) -> float:
        return _nanmean([self.iac_nr, self.iec_nr])

    @property
    def adversary_reactivity(self) -> float:
        return _nanmean([self.iac_ar, self.iec_ar])

    @property
    def meta_consistency(self) -> float:
        """MetaQuantus's MC score: the mean of the four."""
        return _nanmean([self.iac_nr, self.iec_nr, self.iac_ar, self.iec_ar])


def _nanmean(values: list[float]) -> float:
    """Mean of the finite values; NaN (without numpy's empty-slice warning) when there is none."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def consistency(clean: np.ndarray, minor: list[np.ndarray], disrupted: np.ndarray) -> Consistency:
    """The four scores from oriented per-image scores (images, maps): clean, under each minor perturbation
    (images whose prediction flipped already removed, i.e. NaN rows), and with the maps disrupted."""

    def iac(other: np.ndarray) -> float:
        return _nanmean([signed_rank_p(clean[:, m], other[:, m]) for m in range(clean.shape[1])])

    def rows(other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = np.isfinite(clean).all(axis=1) & np.isfinite(other).all(axis=1)
        return clean[keep], other[keep]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy on tiny samples; NaNs are handled
        iac_nr = _nanmean([iac(m) for m in minor])
        iec_nr = _nanmean([order_agreement(*rows(m)) for m in minor])
        iac_ar = 1.0 - iac(disrupted)
        iec_ar = 1.0 - order_agreement(*rows(disrupted))
    return Consistency(iac_nr, iec_nr, iac_ar, iec_ar)
