"""The robustness family against Quantus 0.6.0 with the same explain function and the same noise draws."""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest
import quantus
import torch

from camscope.core.errors import CamscopeError, CamscopeWarning, MetricInputError
from camscope.metrics import get_metric
from camscope.metrics import robustness as R
from tests.metrics.conftest import tiny_cnn
from tests.metrics.quantus_replay import replay_draws, run_quantus

TARGETS = np.array([0, 3])


def saliency(model, inputs, targets, **_):
    """|∂ logit / ∂ x| summed over channels; takes Quantus's NumPy batches and camscope's tensors alike."""
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs, dtype=torch.float32)
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(x)
        out[torch.arange(len(x)), torch.as_tensor(np.asarray(targets))].sum().backward()
    return x.grad.abs().sum(1).numpy()


@pytest.fixture(scope="module")
def batch():
    model = tiny_cnn()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    maps = saliency(model, x, TARGETS)
    maps /= maps.max(axis=(1, 2), keepdims=True)
    return model, x, maps


def quantus_scores(monkeypatch, cls, batch, batch_size=64, **init):
    model, x, maps = batch
    metric = cls(disable_warnings=True, return_aggregate=False, **init)
    out, recorded = run_quantus(
        monkeypatch, metric, model=model, x_batch=x.numpy(), y_batch=TARGETS, a_batch=maps, explain_func=saliency,
        batch_size=batch_size, device="cpu",
    )  # fmt: skip
    return np.asarray(out, dtype=np.float64), recorded


@pytest.mark.parametrize(
    ("cls", "func"), [(quantus.MaxSensitivity, R.max_sensitivity), (quantus.AvgSensitivity, R.avg_sensitivity)]
)
def test_sensitivity_equals_quantus(batch, monkeypatch, cls, func):
    expected, recorded = quantus_scores(monkeypatch, cls, batch, nr_samples=6)
    replay_draws(monkeypatch, recorded)
    model, x, maps = batch
    got = func(model, x, maps, TARGETS.tolist(), explain_func=saliency, nr_samples=6, batch_size=5)
    np.testing.assert_allclose(got.scores, expected, atol=1e-5)
    assert not recorded.values["uniform"]  # every draw used, in Quantus's order


def test_local_lipschitz_estimate_equals_quantus(batch, monkeypatch):
    # Quantus normalises the re-explained maps by their batch's maximum: one image per Quantus batch
    # makes that the per-image normalisation camscope uses; its draws then come image after image,
    # and are put back in camscope's order (sample after sample)
    samples, n, features = 5, 2, 3 * 16 * 16
    expected, recorded = quantus_scores(
        monkeypatch, quantus.LocalLipschitzEstimate, batch, batch_size=1, nr_samples=samples
    )
    drawn = np.array(recorded.values["normal"]).reshape(n, samples, features)
    recorded.values["normal"].clear()
    recorded.values["normal"].extend(drawn.transpose(1, 0, 2).reshape(-1).tolist())
    replay_draws(monkeypatch, recorded)
    model, x, maps = batch
    got = R.local_lipschitz_estimate(model, x, maps, TARGETS.tolist(), explain_func=saliency, nr_samples=samples)
    np.testing.assert_allclose(got.scores, expected, rtol=1e-5)


def test_prediction_flips_warn_flag_and_match_quantus_nan(batch, monkeypatch):
    init = dict(nr_samples=4, lower_bound=3.0, return_nan_when_prediction_changes=True)
    expected, recorded = quantus_scores(monkeypatch, quantus.MaxSensitivity, batch, **init)
    replay_draws(monkeypatch, recorded)
    model, x, maps = batch
    with pytest.warns(CamscopeWarning, match="changed the model's top-1 class"):
        got = R.max_sensitivity(model, x, maps, TARGETS.tolist(), explain_func=saliency, **init)
    assert got.prediction_changed.any()
    np.testing.assert_array_equal(np.isnan(got.scores), np.isnan(expected))
    np.testing.assert_allclose(got.scores, expected, atol=1e-5)  # NaN where both are NaN
    assert got.summary()["max_sensitivity_flips"].max() > 0


def test_seeded_draws_are_reproducible_and_small_noise_keeps_predictions(batch):
    model, x, maps = batch
    kwargs = dict(explain_func=saliency, nr_samples=3, lower_bound=1e-3, normalise=True, seed=4)
    first = R.avg_sensitivity(model, x, maps, TARGETS.tolist(), **kwargs)
    again = R.avg_sensitivity(model, x, maps, TARGETS.tolist(), **kwargs)
    np.testing.assert_array_equal(first.samples, again.samples)
    assert not first.prediction_changed.any() and (first.scores < 0.5).all()


def test_method_name_explains_with_the_models_layers(batch):
    model, x, _ = batch
    maps = R.method_explainer("gradcam")(model, x, TARGETS)
    result = R.max_sensitivity(
        model, x, np.asarray(maps), TARGETS.tolist(), explain_func="gradcam", nr_samples=2, seed=0
    )
    assert result.scores.shape == (2,) and np.isfinite(result.scores).all()


def test_flips_come_from_the_explain_functions_own_forward(batch):
    # the logits of the noisy copies are read from the forward the explain function runs on them; an
    # explain function that never runs this model on them gets a forward of its own: same flips either way
    model, x, maps = batch
    twin = copy.deepcopy(model)
    shapes = []
    handle = model.register_forward_hook(lambda module, args, out: shapes.append(tuple(args[0].shape)))
    kwargs = dict(nr_samples=5, lower_bound=1.0, seed=3, batch_size=4)
    try:
        read = R.max_sensitivity(model, x, maps, TARGETS.tolist(), explain_func=saliency, **kwargs)
        forwards = list(shapes)
        shapes.clear()
        run = R.max_sensitivity(
            model, x, maps, TARGETS.tolist(), explain_func=lambda m, xs, t: saliency(twin, xs, t), **kwargs
        )
    finally:
        handle.remove()
    assert forwards == [(2, 3, 16, 16), (4, 3, 16, 16), (4, 3, 16, 16), (2, 3, 16, 16)]  # clean, then 10 copies
    assert shapes == forwards  # the same batches, run by the metric itself
    assert read.prediction_changed.any() and not read.prediction_changed.all()
    np.testing.assert_array_equal(read.prediction_changed, run.prediction_changed)
    np.testing.assert_array_equal(read.samples, run.samples)


def test_explain_func_kwargs_reach_the_explainer(batch):
    model, x, maps = batch
    seen = []

    def explain(model, inputs, targets, scale):
        seen.append(scale)
        return saliency(model, inputs, targets) * scale

    kwargs = dict(nr_samples=2, seed=0, normalise=False)
    once = R.avg_sensitivity(model, x, maps, TARGETS.tolist(), explain_func=explain,
                             explain_func_kwargs={"scale": 1.0}, **kwargs)  # fmt: skip
    twice = R.avg_sensitivity(model, x, maps, TARGETS.tolist(), explain_func=explain,
                              explain_func_kwargs={"scale": 2.0}, **kwargs)  # fmt: skip
    assert seen == [1.0, 2.0] and not np.allclose(once.scores, twice.scores)
    named = R.max_sensitivity(
        model, x, maps, TARGETS.tolist(), explain_func="gradcam", explain_func_kwargs={"layers": ["0"]}, **kwargs
    )
    default = R.max_sensitivity(model, x, maps, TARGETS.tolist(), explain_func="gradcam", **kwargs)
    assert not np.allclose(named.samples, default.samples)  # the first convolution, not the spec's layer
    with pytest.raises(MetricInputError, match="takes no parameter"):
        R.max_sensitivity(model, x, maps, explain_func="gradcam", explain_func_kwargs={"nope": 1}, **kwargs)


def test_public_signatures_keep_quantus_names_and_defaults():
    for func, normalise, noise in (
        (R.max_sensitivity, False, {"lower_bound": 0.2, "upper_bound": None}),
        (R.avg_sensitivity, False, {"lower_bound": 0.2, "upper_bound": None}),
        (R.local_lipschitz_estimate, True, {"perturb_mean": 0.0, "perturb_std": 0.1}),
    ):
        params = inspect.signature(func).parameters
        assert list(params)[:4] == ["model", "inputs", "maps", "targets"] and params["targets"].default is None
        defaults = {k: v.default for k, v in list(params.items())[4:]}
        assert defaults == {
            "batch_size": 64, "abs": False, "normalise": normalise, "explain_func": "gradcam",
            "explain_func_kwargs": None, "seed": None, "nr_samples": 200,
            "return_nan_when_prediction_changes": False, **noise,
        }  # fmt: skip
        assert set(get_metric(func.__name__).params) == set(defaults)
        assert func.__doc__ and func.__name__ in {"max_sensitivity", "avg_sensitivity", "local_lipschitz_estimate"}


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"nr_samples": 0}, MetricInputError, "nr_samples"),
        ({"batch_size": 0}, MetricInputError, "batch_size"),
        ({"nr_samples": 2, "nr_sample": 3}, MetricInputError, "no parameter 'nr_sample'"),
        ({"explain_func": 3}, MetricInputError, "explain_func"),
        ({"explain_func": "no_such_method"}, CamscopeError, "no_such_method"),
        ({"explain_func": lambda m, x, t: np.zeros((len(x), 4, 4))}, MetricInputError, "do not fit"),
        ({"lower_bound": 0.5, "upper_bound": 0.1}, MetricInputError, "upper_bound"),
        ({"perturb_std": -1.0}, MetricInputError, "no parameter 'perturb_std'"),
    ],
)
def test_bad_input_is_one_clear_error(batch, kwargs, error, needle):
    model, x, maps = batch
    with pytest.raises(error, match=needle) as caught:
        R.max_sensitivity(model, x, maps, TARGETS.tolist(), **{"explain_func": saliency, "nr_samples": 2, **kwargs})
    assert "\n" not in str(caught.value)


def test_negative_perturb_std_is_refused(batch):
    model, x, maps = batch
    with pytest.raises(MetricInputError, match="perturb_std must not be negative"):
        R.local_lipschitz_estimate(model, x, maps, explain_func=saliency, perturb_std=-0.1)


def test_registered_with_flag_columns():
    for name in ("max_sensitivity", "avg_sensitivity", "local_lipschitz_estimate"):
        metric = get_metric(name)
        assert [c.name for c in metric.columns] == [name, f"{name}_flips"]
        assert not metric.columns[0].higher_is_better and "explain_func" in metric.params


@pytest.mark.slow
def test_evaluate_re_explains_with_the_method_that_made_the_maps():
    import camscope

    with pytest.warns(UserWarning):
        model = camscope.load_model("mini_resnet", random_weights=True)
    images = [np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8) for i in range(2)]
    explained = camscope.explain(model, images, method="xgradcam")
    scores = camscope.evaluate(model, images, explained, ["max_sensitivity"], nr_samples=2, seed=0)
    x = torch.stack([torch.as_tensor(e.map) for e in explained])  # the maps; inputs rebuilt below
    from camscope.pipeline import model_and_batch

    inputs = model_and_batch(model, images).x
    targets = [e.target for e in explained]
    same = R.max_sensitivity(model, inputs, x.numpy(), targets, explain_func="xgradcam", nr_samples=2, seed=0)
    other = R.max_sensitivity(model, inputs, x.numpy(), targets, explain_func="eigencam", nr_samples=2, seed=0)
    np.testing.assert_allclose(scores["max_sensitivity"], same.scores)
    assert not np.allclose(scores["max_sensitivity"], other.scores)
    assert set(scores) == {"max_sensitivity", "max_sensitivity_flips"}
