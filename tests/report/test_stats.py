"""The difference of two groups' means: its interval and whether the images resolve it."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from camscope.report.html import _verdict
from camscope.report.stats import Estimate, difference, estimate


def _est(values: np.ndarray) -> Estimate:
    return estimate(float(values.mean()), float(values.std(ddof=1)), len(values))


def test_difference_interval_is_the_welch_style_combination() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 0.1, 40), rng.normal(0.45, 0.2, 60)
    d = difference(_est(a), _est(b))
    assert d.mean == np.float64(a.mean() - b.mean())
    t_a, t_b = stats.t.ppf(0.975, 39), stats.t.ppf(0.975, 59)  # each group's own t quantile
    expected = math.sqrt((t_a * a.std(ddof=1) / math.sqrt(40)) ** 2 + (t_b * b.std(ddof=1) / math.sqrt(60)) ** 2)
    assert math.isclose(d.half_width, expected, rel_tol=1e-12)


def test_resolved_only_when_the_interval_excludes_zero() -> None:
    assert difference(Estimate(0.8, 0.03, 50), Estimate(0.6, 0.04, 50)).resolved
    assert not difference(Estimate(0.62, 0.03, 50), Estimate(0.6, 0.04, 50)).resolved
    assert not difference(Estimate(0.8, math.nan, 1), Estimate(0.6, 0.04, 50)).resolved


def test_report_cell_says_whether_the_difference_is_resolved() -> None:
    assert "(resolved)" in _verdict(Estimate(0.8, 0.03, 50), Estimate(0.6, 0.04, 50))
    assert "more images needed" in _verdict(Estimate(0.62, 0.03, 50), Estimate(0.6, 0.04, 50))
    assert "too few images" in _verdict(Estimate(0.8, math.nan, 1), Estimate(0.6, 0.04, 50))
    assert _verdict(None, Estimate(0.6, 0.04, 50)).endswith("–</td>")
