"""Randomisation family (random_logit, smooth_mprt, efficient_mprt) against Quantus 0.6.0, draw for draw.

The model is a tiny random-weight CNN of Conv2d and Linear layers only: there Quantus's randomisation
(``reset_parameters`` of every such module under ``torch.manual_seed(seed + 1)``) and camscope's cascade
randomise the same parameters with the same draws. Both sides explain with the same camscope Grad-CAM.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from torch import nn

from camscope.cli import main
from camscope.core.errors import MetricInputError
from camscope.metrics import efficient_mprt, get_metric, mprt, random_logit, smooth_mprt
from camscope.metrics.randomisation import explainer, quantus_layers, target_layers
from tests.metrics.quantus_helpers import PER_IMAGE, quantus, quantus_call, quantus_scores
from tests.sweep.helpers import write_config

LAYERS = {"layers": ["2"]}


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(128, 5),
    ).eval()


@pytest.fixture(scope="module")
def setup():
    model = _cnn()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(1).numpy()
    run = explainer("gradcam", LAYERS)

    def quantus_explain(model, inputs, targets, **kwargs):
        """Quantus's explain_func convention (numpy in, numpy out) around the same camscope Grad-CAM."""
        return run(model, torch.as_tensor(np.asarray(inputs), dtype=torch.float32), [int(t) for t in targets]).numpy()

    return model, x, y, quantus_explain(model, x.numpy(), y), quantus_explain


def _quantus(metric, setup, scores=quantus_scores):
    model, x, y, a, quantus_explain = setup
    return scores(metric, model=model, x_batch=x.numpy(), y_batch=y, a_batch=a.copy(), explain_func=quantus_explain)


@pytest.mark.parametrize("kwargs", [{}, {"abs": True, "seed": 3}])
def test_random_logit_equals_quantus(setup, kwargs):
    model, x, y, a, quantus_explain = setup
    peer = quantus.RandomLogit(num_classes=5, normalise_func_kwargs=PER_IMAGE, disable_warnings=True, **kwargs)
    expected = _quantus(peer, setup)
    ours = random_logit(model, x, a, list(y), explain_func="gradcam", explain_func_kwargs=LAYERS, **kwargs).scores
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)
    # the same with Quantus's own calling convention: a callable explain_func
    called = random_logit(model, x, a, list(y), explain_func=quantus_explain, **kwargs).scores
    np.testing.assert_allclose(called, ours, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kwargs", [{}, {"layer_order": "top_down", "skip_layers": False, "abs": True}])
def test_efficient_mprt_equals_quantus(setup, kwargs):
    model, x, y, a, _ = setup
    expected = _quantus(quantus.EfficientMPRT(disable_warnings=True, **kwargs), setup)
    result = efficient_mprt(model, x, a, list(y), explain_func="gradcam", explain_func_kwargs=LAYERS, **kwargs)
    np.testing.assert_allclose(result.scores, expected, atol=1e-5, rtol=0)
    steps = 1 + (len(quantus_layers(model, "bottom_up")) if kwargs.get("skip_layers") is False else 1)
    assert result.values.shape == (steps, 4)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kwargs", [{"nr_samples": 3}, {"nr_samples": 2, "layer_order": "top_down", "noise_magnitude": 0.3}]
)
def test_smooth_mprt_equals_quantus_draw_for_draw(setup, kwargs, monkeypatch):
    """Quantus's Smooth MPRT explains through ``quantus.explain`` (captum or zennit, neither installed)
    whatever explain_func it is given: it gets the same Grad-CAM here. Its noise comes from NumPy's
    global stream, seeded here as camscope seeds its own (``seed``)."""
    import quantus.metrics.randomisation.smooth_mprt as peer_module

    model, x, y, a, quantus_explain = setup
    monkeypatch.setattr(peer_module.quantus, "explain", quantus_explain)
    np.random.seed(42)
    peer = quantus.SmoothMPRT(disable_warnings=True, **kwargs)
    with torch.random.fork_rng():  # Quantus seeds torch's global generator
        layers = _quantus(peer, setup, scores=quantus_call)
    result = smooth_mprt(model, x, a, list(y), explain_func="gradcam", explain_func_kwargs=LAYERS, **kwargs)
    assert result.steps == list(layers)
    np.testing.assert_allclose(result.values, np.array(list(layers.values())), atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.scores, list(layers.values())[-1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kwargs", [{}, {"layer_order": "bottom_up", "skip_layers": True}])
def test_mprt_equals_quantus(setup, kwargs):
    model, x, y, a, _ = setup
    with torch.random.fork_rng():  # Quantus seeds torch's global generator
        layers = _quantus(quantus.MPRT(disable_warnings=True, **kwargs), setup, scores=quantus_call)
    result = mprt(model, x, a, list(y), explain_func="gradcam", explain_func_kwargs=LAYERS, **kwargs)
    assert result.steps == list(layers)
    np.testing.assert_allclose(result.values, np.array(list(layers.values())), atol=1e-5, rtol=0)


def test_a_map_that_ignores_the_model_fails_the_test_and_gradcam_passes(setup):
    """The point of MPRT: an 'explanation' that is only the image keeps its correlation under a random
    model (near 1); Grad-CAM's falls."""
    model, x, y, a, _ = setup

    def image_only(model, inputs, targets):
        return inputs.abs().sum(1)

    edge = image_only(None, x, None).numpy()
    kwargs = {"nr_samples": 1, "skip_layers": True}  # one sample: the noiseless input, plain MPRT
    np.testing.assert_allclose(smooth_mprt(model, x, edge, list(y), explain_func=image_only, **kwargs).scores, 1.0)
    assert (
        smooth_mprt(model, x, a, list(y), explain_func="gradcam", explain_func_kwargs=LAYERS, **kwargs).scores.max()
        < 0.5
    )


def test_the_model_is_left_as_it_was(setup):
    model, x, y, a, _ = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    efficient_mprt(model, x, a, list(y), explain_func="gradcam", explain_func_kwargs=LAYERS)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_model_gets_its_weights_back_when_an_explanation_fails(setup):
    """The cascade randomises the model in place: a failure half-way must not leave it randomised."""
    model, x, y, a, _ = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []

    def fails_on_the_randomised_model(model, inputs, targets):
        calls.append(1)
        if len(calls) == 2:  # the first call explains the trained model, the second a randomised one
            raise RuntimeError("explanation failed")
        return inputs.abs().sum(1)

    with pytest.raises(RuntimeError, match="explanation failed"):
        mprt(model, x, a, list(y), explain_func=fails_on_the_randomised_model)
    assert len(calls) == 2
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_target_layers_are_remembered_until_the_layer_is_replaced(monkeypatch):
    """Resolving the layers runs a probe forward pass: once per model and input size, again when another
    module sits at the path."""
    import camscope.models.layers as layers_module

    probes = []
    real_probe = layers_module.probe
    monkeypatch.setattr(layers_module, "probe", lambda *a, **k: probes.append(1) or real_probe(*a, **k))
    model = _cnn()
    assert target_layers(model, ["2"], (32, 32)) == target_layers(model, ["2"], (32, 32)) == (["2"], None)
    assert len(probes) == 1
    model[2] = nn.Conv2d(8, 8, 3, padding=1)
    target_layers(model, ["2"], (32, 32))
    target_layers(model, ["2"], (16, 16))
    assert len(probes) == 3


def test_bad_input_is_one_clear_error(setup):
    model, x, y, a, _ = setup
    with pytest.raises(MetricInputError, match="explain_func"):
        random_logit(model, x, a, list(y))
    with pytest.raises(MetricInputError, match="nr_samples"):
        smooth_mprt(model, x, a, list(y), explain_func="gradcam", nr_samples=0)
    with pytest.raises(MetricInputError, match="layer_order"):
        efficient_mprt(model, x, a, list(y), explain_func="gradcam", layer_order="independent")
    for n in (1, 6):
        with pytest.raises(MetricInputError, match="num_classes"):
            random_logit(model, x, a, list(y), explain_func="gradcam", num_classes=n)
    with pytest.raises(MetricInputError, match="n_bins"):
        efficient_mprt(model, x, a, list(y), explain_func="gradcam", complexity_func_kwargs={"rule": "scotts"})
    with pytest.raises(MetricInputError, match="takes no parameter"):
        random_logit(model, x, a, list(y), explain_func="gradcam", explain_func_kwargs={"nope": 1})
    with pytest.raises(MetricInputError, match="shape"):
        random_logit(model, x, a[:2], list(y), explain_func="gradcam")


@pytest.mark.slow
def test_evaluate_re_explains_with_the_method_that_made_the_maps(capsys):
    args = ["evaluate", "--model", "mini_resnet", "--synthetic", "2", "--method", "gradcam"]
    assert main([*args, "--metrics", "random_logit,efficient_mprt", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["images"]
    assert all(-1 <= row["random_logit"] <= 1 for row in rows)
    assert all(row["efficient_mprt"] is not None for row in rows)
    assert get_metric("smooth_mprt").columns[0].name == "smooth_mprt"


@pytest.mark.slow
def test_a_sweep_runs_the_randomisation_metrics(tmp_path):
    from camscope.sweep import ResultsStore, load_config, run_sweep

    config = load_config(
        write_config(
            tmp_path / "sweep.toml",
            models=[{"name": "mini_resnet", "random_weights": True}],
            methods=["gradcam"],
            images={"source": "synthetic:2", "seed": 0},
            metrics={"random_logit": {}, "smooth_mprt": {"nr_samples": 2, "skip_layers": True}},
        )
    )
    assert not run_sweep(config, progress=False, out=io.StringIO()).failures
    table = ResultsStore(config.output).read()
    for name in ("random_logit", "smooth_mprt"):
        values = table.filter(pc.equal(table["metric"], name))["value"].to_pylist()
        assert len(values) == 2 and all(np.isfinite(values))


def test_random_logit_counts_the_outputs_without_a_forward_of_its_own_where_it_can(setup):
    """A model that declares ``num_classes`` (timm's), or a given ``num_classes``, needs no forward just to count
    the model's outputs: the only forwards are the re-explanation's. Otherwise one single-image forward counts them."""
    model, x, y, a, _ = setup
    batches: list[int] = []
    handle = model.register_forward_hook(lambda module, args, out: batches.append(args[0].shape[0]))
    kwargs = {"explain_func": "gradcam", "explain_func_kwargs": LAYERS}
    try:
        plain = random_logit(model, x, a, list(y), **kwargs).scores
        counted, batches[:] = list(batches), []
        given = random_logit(model, x, a, list(y), num_classes=5, **kwargs).scores
        with_count, batches[:] = list(batches), []
        model.num_classes = 5
        declared = random_logit(model, x, a, list(y), **kwargs).scores
    finally:
        handle.remove()
        del model.num_classes
    assert counted == [1, *batches] and 1 not in batches and with_count == batches
    np.testing.assert_array_equal(declared, plain)
    np.testing.assert_array_equal(given, plain)


def test_random_logit_checks_a_given_class_count_on_the_re_explanations_outputs(setup):
    """Too large a ``num_classes`` is one clear line whether or not the drawn classes broke the explanation."""
    model, x, y, a, _ = setup
    for n in (6, 1000):  # 6: the draws may stay in range; 1000: some class beyond the 5 outputs is drawn
        with pytest.raises(
            MetricInputError, match=r"num_classes must be a whole number in 2\.\.5 \(the model outputs\), got " + str(n)
        ):
            random_logit(model, x, a, list(y), explain_func="gradcam", explain_func_kwargs=LAYERS, num_classes=n)
    with pytest.raises(MetricInputError, match=r"in 2\.\., got 1"):
        random_logit(model, x, a, list(y), explain_func="gradcam", num_classes=1)
