"""Group means with 95 % confidence intervals, and the best value by each metric column's declared direction.

The interval is Student's t: ``mean ± t(0.975, n−1) · s / √n`` over images — the honest interval
for the few dozen images a report usually summarises (the normal 1.96 is too narrow there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from scipy import stats

from camscope.metrics.registry import higher_is_better
from camscope.sweep.summary import means


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values and the half-width of its 95 % confidence interval (NaN for n < 2)."""

    mean: float
    half_width: float
    n: int


@dataclass(frozen=True)
class Difference:
    """``a − b`` of two independent estimates, with the half-width of its 95 % interval."""

    mean: float
    half_width: float

    @property
    def resolved(self) -> bool:
        """Whether the interval of the difference excludes zero: the groups differ beyond the noise."""
        return not math.isnan(self.half_width) and abs(self.mean) > self.half_width


def difference(a: Estimate, b: Estimate) -> Difference:
    """Why this, not two overlapping intervals: the difference of independent means has the half-width
    ``hypot(a, b)``, narrower than ``a + b``, so "the intervals overlap" would call some real gaps noise."""
    return Difference(a.mean - b.mean, math.hypot(a.half_width, b.half_width))


def estimate(mean: float, std: float | None, n: int) -> Estimate:
    if n < 2 or std is None or math.isnan(std):
        return Estimate(mean, math.nan, n)
    return Estimate(mean, float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n), n)


def grouped(table: pa.Table, keys: tuple[str, ...]) -> dict[tuple[Any, ...], Estimate]:
    """Estimate per group of ``keys`` (the last key is usually the metric)."""
    out = {}
    for row in means(table, keys).to_pylist():
        out[tuple(row[k] for k in keys)] = estimate(row["value_mean"], row["value_stddev"], row["value_count"])
    return out


def best(values: dict[str, float], metric: str) -> set[str]:
    """The keys of the best value by the metric's direction (ties all win); empty with nothing to compare."""
    finite = {k: v for k, v in values.items() if not math.isnan(v)}
    if len(finite) < 2:
        return set()
    top = max(finite.values()) if higher_is_better(metric) else min(finite.values())
    return {k for k, v in finite.items() if math.isclose(v, top, rel_tol=1e-9, abs_tol=1e-12)}
