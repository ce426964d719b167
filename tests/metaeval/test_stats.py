"""The meta-evaluation's statistics on hand-made inputs: τ against scipy, bootstrap coverage, the rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from camscope.metaeval.stats import (
    bootstrap_interval,
    consistency,
    discriminates,
    kendall_tau,
    order_agreement,
    signed_rank_p,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1, 2, 3, 4, 5], [1, 3, 2, 5, 4]),  # two adjacent swaps
        ([1, 1, 2, 3, 3, 4], [2, 1, 2, 4, 3, 3]),  # ties in both
        ([0.9, 0.1, 0.5, 0.5], [0.2, 0.8, 0.4, 0.3]),
    ],
)
def test_kendall_tau_is_scipys_tau_b(a, b):
    assert kendall_tau(np.array(a), np.array(b)) == pytest.approx(stats.kendalltau(a, b, variant="b").statistic)


def test_kendall_tau_by_hand_and_edge_cases():
    # 10 pairs, 2 discordant (2-3 and 4-5 swapped): (8 - 2) / 10
    assert kendall_tau(np.array([1, 2, 3, 4, 5]), np.array([1, 3, 2, 5, 4])) == pytest.approx(0.6)
    assert kendall_tau(np.arange(4), -np.arange(4)) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau(np.ones(4), np.arange(4)))
    with pytest.raises(ValueError, match="one length"):
        kendall_tau(np.arange(3), np.arange(4))


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    trials, covered = 150, 0
    for t in range(trials):
        sample = rng.normal(0.0, 1.0, 40)
        interval = bootstrap_interval(len(sample), lambda i, s=sample: float(s[i].mean()), resamples=300, seed=t)
        assert interval.low <= interval.value <= interval.high
        covered += interval.low <= 0.0 <= interval.high
    assert 0.85 <= covered / trials <= 0.995  # percentile bootstrap on n = 40: slightly under 95 %


def test_bootstrap_interval_resamples_items_together_and_drops_nan_statistics():
    a = np.arange(10.0)
    interval = bootstrap_interval(10, lambda i: float(np.mean(a[i] - a[i])), resamples=50)
    assert (interval.value, interval.low, interval.high) == (0.0, 0.0, 0.0)  # paired: the difference is always 0
    nan = bootstrap_interval(5, lambda i: float("nan"), resamples=20)
    assert math.isnan(nan.value) and math.isnan(nan.low)


def test_discrimination_needs_oracle_above_random_above_inverse_strictly():
    assert discriminates(0.9, 0.5, 0.1)
    assert not discriminates(0.9, 0.1, 0.5)
    assert not discriminates(0.5, 0.5, 0.1)  # a tie is not a separation
    assert not discriminates(float("nan"), 0.5, 0.1)


def test_signed_rank_and_order_agreement():
    x = np.linspace(0, 1, 12)
    assert signed_rank_p(x, x) == 1.0
    assert signed_rank_p(x, x + 1.0) < 0.01
    assert math.isnan(signed_rank_p(x[:1], x[:1]))
    scores = np.array([[0.1, 0.5, 0.9], [0.3, 0.2, 0.1]])
    assert order_agreement(scores, scores) == 1.0
    assert order_agreement(scores, -scores) == 0.0


def test_consistency_scores_a_stable_and_a_reactive_metric():
    rng = np.random.default_rng(1)
    clean = rng.normal(size=(20, 5)) + np.arange(5)  # maps clearly ordered
    c = consistency(clean, [clean.copy()], clean[:, ::-1] + 3.0)
    assert (c.iac_nr, c.iec_nr) == (1.0, 1.0)
    assert c.iac_ar > 0.99 and c.iec_ar > 0.7  # noise keeps a few per-image orders
    assert c.meta_consistency == pytest.approx(np.mean([c.iac_nr, c.iec_nr, c.iac_ar, c.iec_ar]))
    blind = consistency(clean, [clean.copy()], clean.copy())  # a metric that ignores the disruption
    assert blind.adversary_reactivity == 0.0
