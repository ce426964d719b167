"""Complexity family (sparseness, complexity, effective_complexity) against Quantus 0.6.0."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from camscope.cli import main
from camscope.core.errors import CamscopeWarning, MetricInputError
from camscope.metrics import complexity, effective_complexity, get_metric, sparseness
from tests.metrics.quantus_helpers import PER_IMAGE, quantus, quantus_scores

CASES = [
    ("sparseness", quantus.Sparseness, {}),
    ("complexity", quantus.Complexity, {}),
    ("effective_complexity", quantus.EffectiveComplexity, {"eps": 0.2}),
]


def _maps(seed: int, n: int = 5, side: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, side, side))


@pytest.mark.parametrize(("name", "peer", "kwargs"), CASES)
@pytest.mark.parametrize(("abs_", "normalise"), [(True, True), (False, True), (True, False)])
def test_equals_quantus_on_signed_maps(name, peer, kwargs, abs_, normalise):
    """Maps with mixed signs and different scales per image; Quantus normalised per image (see below)."""
    a = _maps(0) * np.arange(1, 6)[:, None, None]
    x = np.random.default_rng(1).normal(size=(5, 3, 32, 32))
    metric = peer(abs=abs_, normalise=normalise, normalise_func_kwargs=PER_IMAGE, disable_warnings=True, **kwargs)
    expected = quantus_scores(metric, model=None, x_batch=x, y_batch=np.zeros(5, int), a_batch=a.copy())
    ours = get_metric(name)(None, None, a, None, abs=abs_, normalise=normalise, **kwargs).summary()[name]
    # signed sparseness divides by a sum near 0 (values reach ~100): 1e-5 of it is relative
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize(("name", "peer", "kwargs"), CASES)
def test_equals_quantus_defaults_on_cam_maps(name, peer, kwargs):
    """CAM maps (non-negative, maximum 1 each): Quantus's defaults, batch-wide normalisation included."""
    a = np.clip(_maps(2), 0, None) ** 2
    a /= a.max(axis=(1, 2), keepdims=True)
    a[:, :8] = 0  # ties and zeros, as ReLU-ed CAMs have
    x = np.zeros((5, 3, 32, 32))
    metric = peer(disable_warnings=True, **kwargs)
    expected = quantus_scores(metric, model=None, x_batch=x, y_batch=np.zeros(5, int), a_batch=a.astype(np.float32))
    ours = get_metric(name)(None, None, a.astype(np.float32), None, **kwargs).summary()[name]
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)


def test_batch_wide_normalisation_is_quantus_only():
    """Quantus divides by the batch's largest value: an image's score changes with its neighbours.
    camscope's does not (its score is the same alone or in any batch)."""
    a = _maps(3, n=2)
    a[1] *= 100
    alone = effective_complexity(a[:1], eps=0.2).scores
    together = effective_complexity(a, eps=0.2).scores
    assert together[0] == alone[0]
    peer = quantus_scores(
        quantus.EffectiveComplexity(eps=0.2, disable_warnings=True),
        model=None,
        x_batch=np.zeros((2, 3, 32, 32)),
        y_batch=np.zeros(2, int),
        a_batch=a.copy(),
    )
    assert peer[0] != alone[0]


def test_oracles_on_known_maps():
    one_hot = np.zeros((1, 4, 4))
    one_hot[0, 1, 2] = 1.0
    flat = np.ones((1, 4, 4))
    assert sparseness(one_hot).scores[0] == pytest.approx(15 / 16, abs=1e-5)  # (n-1)/n: fully concentrated
    assert sparseness(flat).scores[0] == pytest.approx(0.0, abs=1e-9)
    assert complexity(flat).scores[0] == pytest.approx(np.log(16))
    assert complexity(one_hot).scores[0] == pytest.approx(0.0, abs=1e-9)
    half = np.zeros((1, 4, 4))
    half[0, :2] = [[1, 0.5, 0.1, 1e-6]] * 2
    assert effective_complexity(half, eps=0.2).scores[0] == 4
    assert effective_complexity(half, eps=0.0).scores[0] == 8


def test_torch_maps_stay_on_their_device_and_give_the_same_scores():
    a = _maps(4)
    for func in (sparseness, complexity, effective_complexity):
        np.testing.assert_allclose(func(torch.from_numpy(a)).scores, func(a).scores, rtol=0, atol=0)


def test_all_zero_map_warns_and_gives_nan_entropy():
    a = _maps(5, n=2)
    a[1] = 0
    with pytest.warns(CamscopeWarning, match="all-zero"):
        scores = complexity(a).scores
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert sparseness(a).scores[1] == pytest.approx(0.0, abs=1e-9)


def test_bad_input_is_one_clear_error():
    with pytest.raises(MetricInputError, match="eps"):
        effective_complexity(_maps(0), eps=float("nan"))
    with pytest.raises(MetricInputError, match="shape"):
        sparseness(np.zeros((4, 4)))


@pytest.mark.slow
def test_registered_as_map_metrics_in_the_evaluate_cli(capsys):
    names = ("sparseness", "complexity", "effective_complexity")
    for name in names:
        metric = get_metric(name)
        assert metric.maps_only and not metric.needs_ground_truth
        assert metric.columns[0].name == name
    assert get_metric("sparseness").columns[0].higher_is_better
    assert not get_metric("complexity").columns[0].higher_is_better
    args = ["evaluate", "--model", "mini_resnet", "--synthetic", "2", "--metrics", ",".join(names), "--json"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)["images"]
    assert len(rows) == 2
    for row in rows:
        assert 0 <= row["sparseness"] <= 1 and row["complexity"] > 0 and row["effective_complexity"] >= 1


def test_float32_valued_maps_sort_in_float32_with_the_float64_result():
    """Maps whose values are all float32 (also when given as float64) sort in float32; a map off the
    float32 grid sorts in float64. Both give the Gini index of the float64 values."""
    a32 = np.random.default_rng(3).random((3, 16, 16)).astype(np.float32)
    a64 = a32.astype(np.float64)
    off_grid = a64 + 1e-12
    n = 16 * 16
    ordered = np.sort(a64.reshape(3, -1) / a64.reshape(3, -1).max(1, keepdims=True) + 1e-7, axis=1)
    gini = ((2 * np.arange(1, n + 1) - n - 1) * ordered).sum(1) / (n * ordered.sum(1))
    for maps in (a32, a64, torch.from_numpy(a32)):
        np.testing.assert_allclose(sparseness(maps).scores, gini, rtol=0, atol=1e-14)
    np.testing.assert_allclose(sparseness(off_grid).scores, gini, rtol=0, atol=1e-9)
