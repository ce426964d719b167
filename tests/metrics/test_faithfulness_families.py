"""The faithfulness family against Quantus 0.6.0 on the same inputs (and the same random draws).

Tiny random-weight CNNs on 3×32×32 (IROF: 1×32×32) images; maps are random and already divided by
their maximum, so Quantus's batch-wide normalisation and camscope's per-image one agree. Quantus's
``np.trapz`` is put back for its calls only (see :mod:`quantus_replay`).
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import quantus
import torch
from torch import nn

from camscope.core.errors import CamscopeWarning, MetricInputError
from camscope.metrics import faithfulness as F
from camscope.metrics import get_metric, sampling
from camscope.metrics._common import image_logits, shared_forwards
from tests.metrics.conftest import tiny_cnn
from tests.metrics.quantus_replay import replay_draws, run_quantus


@pytest.fixture(scope="module")
def batch() -> tuple[nn.Module, torch.Tensor, np.ndarray, np.ndarray]:
    model = tiny_cnn()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 32, 32, generator=g)
    maps = torch.rand(3, 32, 32, generator=g).numpy()
    maps /= maps.max(axis=(1, 2), keepdims=True)
    return model, x, maps, np.array([0, 3, 1])


def quantus_call(monkeypatch, cls, batch, *, seed=0, call=None, **init):
    model, x, maps, y = batch
    metric = cls(disable_warnings=True, return_aggregate=False, **init)
    out, recorded = run_quantus(
        monkeypatch,
        metric,
        seed,
        model=model,
        x_batch=x.numpy(),
        y_batch=y,
        a_batch=maps[:, None],
        device="cpu",
        **(call or {}),
    )
    return np.asarray(out, dtype=np.float64), recorded


def ours(func, batch, **kwargs):
    model, x, maps, y = batch
    return func(model, x, maps, y.tolist(), **kwargs)


def test_faithfulness_correlation_equals_quantus(batch, monkeypatch):
    expected, recorded = quantus_call(monkeypatch, quantus.FaithfulnessCorrelation, batch, nr_runs=20, subset_size=64)
    replay_draws(monkeypatch, recorded)
    got = ours(F.faithfulness_correlation, batch, nr_runs=20, subset_size=64, batch_size=16)
    np.testing.assert_allclose(got.scores, expected, atol=1e-5)
    assert not recorded.choice  # every subset Quantus drew was used, in order


def test_monotonicity_correlation_equals_quantus(batch, monkeypatch):
    init = dict(nr_samples=4, features_in_step=256)
    expected, recorded = quantus_call(monkeypatch, quantus.MonotonicityCorrelation, batch, **init)
    replay_draws(monkeypatch, recorded)
    got = ours(F.monotonicity_correlation, batch, **init, batch_size=20)
    np.testing.assert_allclose(got.scores, expected, atol=1e-5)
    assert not recorded.values["uniform"]


def test_monotonicity_with_a_fixed_baseline_runs_each_group_once(batch, monkeypatch):
    init = dict(nr_samples=2, features_in_step=256, perturb_baseline="black")
    expected, _ = quantus_call(monkeypatch, quantus.MonotonicityCorrelation, batch, **init)
    got = ours(F.monotonicity_correlation, batch, **init)
    np.testing.assert_allclose(got.scores, expected, atol=1e-5)


def test_pixel_flipping_equals_quantus(batch, monkeypatch):
    curves, _ = quantus_call(monkeypatch, quantus.PixelFlipping, batch, features_in_step=128)
    got = ours(F.pixel_flipping, batch, features_in_step=128)
    np.testing.assert_allclose(got.curves, curves, atol=1e-5)
    # Quantus's return_auc_per_sample is np.trapz(curve, dx=1)
    np.testing.assert_allclose(got.scores, np.trapezoid(curves, axis=1), rtol=1e-5)
    assert got.summary() == {"pixel_flipping": got.scores}


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_region_perturbation_equals_quantus(batch, monkeypatch, order):
    init = dict(patch_size=6, order=order, regions_evaluation=12)  # 32 is no multiple of 6: padded grid
    expected, _ = quantus_call(monkeypatch, quantus.RegionPerturbation, batch, **init)
    got = ours(F.region_perturbation, batch, **init)
    np.testing.assert_allclose(got.curves, expected, atol=1e-5)
    np.testing.assert_allclose(got.scores, np.trapezoid(expected, axis=1), rtol=1e-5)


def test_region_perturbation_random_order_equals_quantus(batch, monkeypatch):
    init = dict(patch_size=8, order="random", regions_evaluation=6)
    expected, recorded = quantus_call(monkeypatch, quantus.RegionPerturbation, batch, **init)
    replay_draws(monkeypatch, recorded)
    got = ours(F.region_perturbation, batch, **init)
    np.testing.assert_allclose(got.curves, expected, atol=1e-5)


def test_selectivity_equals_quantus(batch, monkeypatch):
    expected, _ = quantus_call(monkeypatch, quantus.Selectivity, batch, patch_size=8)
    got = ours(F.selectivity, batch, patch_size=8)
    np.testing.assert_allclose(got.curves, expected, atol=1e-5)


def test_infidelity_equals_quantus(batch, monkeypatch):
    # Quantus 0.6.0 reshapes the unpadded image to the padded shape: it works only where the patch
    # sizes divide the image, so the comparison uses 8 and 16 on 32×32
    init = dict(perturb_patch_sizes=[8, 16], n_perturb_samples=1)
    expected, _ = quantus_call(monkeypatch, quantus.Infidelity, batch, **init)
    got = ours(F.infidelity, batch, **init)
    np.testing.assert_allclose(got.scores, expected, rtol=1e-5)


def test_irof_equals_quantus_on_single_channel_images(monkeypatch):
    # Quantus 0.6.0's IROF builds an (N, 1, H, W) mask for (N, C, H, W) inputs: it runs on one-channel
    # images only, and its 'mean' baseline is the mean of the whole batch, so it is called per image
    torch.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3)
    )
    model.eval()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 1, 32, 32, generator=g)
    maps = torch.rand(2, 32, 32, generator=g).numpy()
    maps /= maps.max(axis=(1, 2), keepdims=True)
    y = model(x).argmax(1).detach().numpy()
    got = F.irof(model, x, maps, y.tolist())
    for i in range(2):
        metric = quantus.IROF(disable_warnings=True, return_aggregate=False)
        expected, _ = run_quantus(
            monkeypatch,
            metric,
            model=model,
            x_batch=x[i : i + 1].numpy(),
            y_batch=y[i : i + 1],
            a_batch=maps[i : i + 1, None],
            device="cpu",
        )
        assert got.scores[i] == pytest.approx(expected[0], rel=1e-5)


def test_irof_replaces_every_channel_of_rgb_segments(batch):
    model, x, maps, y = batch
    result = F.irof(model, x, maps, y.tolist(), perturb_baseline=0.0)
    last = np.isfinite(result.curves).sum(axis=1) - 1
    # once every segment is removed the image is all zeros, in every channel
    with torch.no_grad():
        blank = torch.softmax(model(torch.zeros_like(x)), 1)[torch.arange(3), torch.as_tensor(y)]
        clean = torch.softmax(model(x), 1)[torch.arange(3), torch.as_tensor(y)]
    np.testing.assert_allclose(result.curves[np.arange(3), last], (blank / clean).numpy(), rtol=1e-5)


def test_draws_are_uniform_subsets():
    draws = sampling.Draws(0, torch.device("cpu"))
    counts = torch.zeros(50)
    for _ in range(40):
        chosen = draws.subsets(100, 50, 10)
        assert all(len(set(row.tolist())) == 10 for row in chosen)
        counts += torch.bincount(chosen.reshape(-1), minlength=50)
    # each feature is in a subset with probability 10 / 50: 800 expected, binomial sd ≈ 25
    assert (counts - 800).abs().max() < 6 * 25
    assert torch.equal(
        sampling.Draws(3, torch.device("cpu")).subsets(2, 9, 4), sampling.Draws(3, torch.device("cpu")).subsets(2, 9, 4)
    )


def test_seeded_sampling_metric_is_reproducible(batch):
    first = ours(F.faithfulness_correlation, batch, nr_runs=8, subset_size=32, seed=5)
    again = ours(F.faithfulness_correlation, batch, nr_runs=8, subset_size=32, seed=5)
    np.testing.assert_array_equal(first.scores, again.scores)


@pytest.mark.parametrize(
    ("func", "kwargs", "needle"),
    [
        (F.faithfulness_correlation, {"subset_size": 1024}, "subset_size=1024"),
        (F.faithfulness_correlation, {"nr_runs": 0}, "nr_runs"),
        (F.monotonicity_correlation, {"nr_samples": 0}, "nr_samples"),
        (F.pixel_flipping, {"features_in_step": 7}, "features_in_step=7"),
        (F.region_perturbation, {"patch_size": 64}, "patch size 64"),
        (F.region_perturbation, {"order": "up"}, "unknown order"),
        (F.selectivity, {"perturb_baseline": "grey"}, "perturb_baseline"),
        (F.infidelity, {"perturb_patch_sizes": []}, "empty"),
    ],
)
def test_bad_parameters_are_one_clear_error(batch, func, kwargs, needle):
    with pytest.raises(MetricInputError, match=needle) as caught:
        ours(func, batch, **kwargs)
    assert "\n" not in str(caught.value)


def test_constant_map_warns_instead_of_a_silent_nan(batch):
    model, x, _, y = batch
    with pytest.warns(CamscopeWarning, match="no correlation"):
        result = F.faithfulness_correlation(model, x, np.ones((3, 32, 32)), y.tolist(), nr_runs=5, subset_size=4)
    assert np.isnan(result.scores).all()


def test_registry_declares_quantus_parameters():
    for name in (
        "faithfulness_correlation",
        "monotonicity_correlation",
        "pixel_flipping",
        "region_perturbation",
        "selectivity",
        "irof",
        "infidelity",
    ):
        metric = get_metric(name)
        assert metric.columns[0].name == name
        assert {"abs", "normalise", "perturb_baseline", "softmax", "batch_size"} <= set(metric.params)
    assert get_metric("pixel_flipping").has_curves and not get_metric("infidelity").has_curves


@pytest.mark.slow
def test_cli_evaluate_runs_family_metrics(tmp_path, capsys):
    from PIL import Image

    from camscope.cli import main

    path = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    code = main(
        [
            "evaluate",
            str(path),
            "--model",
            "mini_resnet",
            "--random-weights",
            "--json",
            "--metrics",
            "faithfulness_correlation,selectivity",
        ]
    )
    assert code == 0
    row = json.loads(capsys.readouterr().out)["images"][0]
    assert -1 <= row["faithfulness_correlation"] <= 1
    assert np.isfinite(row["selectivity"])


def chefer_oracle(model, x, maps, targets, negative, mean, std):
    """Chefer et al.'s loop, one image and one step at a time: top-k pixels zeroed in image space."""
    steps = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    areas = []
    for image, vis, target in zip(x, torch.as_tensor(maps), targets):
        vis = -vis.reshape(-1) if negative else vis.reshape(-1)
        hits = []
        for p in steps:
            _, idx = torch.topk(vis, int(vis.numel() * p))
            data = (image * s + m).reshape(3, -1).clone()
            data[:, idx] = 0
            with torch.no_grad():
                out = model(((data.reshape(image.shape) - m) / s)[None])
            hits.append(float(out.argmax(1).item() == target))
        areas.append(np.trapezoid(hits, x=steps))
    return np.array(areas)


@pytest.mark.parametrize("negative", [False, True])
def test_chefer_perturbation_equals_a_per_sample_oracle(negative):
    model = tiny_cnn()
    g = torch.Generator().manual_seed(7)
    x = torch.randn(4, 3, 16, 16, generator=g)
    maps = torch.rand(4, 16, 16, generator=g).numpy()
    with torch.no_grad():
        targets = model(x).argmax(1).tolist()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    func = F.negative_perturbation if negative else F.positive_perturbation
    got = func(model, x, maps, targets, mean=mean, std=std, batch_size=7)
    np.testing.assert_array_equal(got.scores, chefer_oracle(model, x, maps, targets, negative, mean, std))
    assert got.curves.shape == (4, 9) and set(np.unique(got.curves)) <= {0.0, 1.0}
    assert got.summary() == {func.__name__: got.scores}


def test_chefer_needs_class_targets(batch):
    model, x, maps, _ = batch
    with pytest.raises(MetricInputError, match="class-index targets"):
        F.positive_perturbation(model, x, maps, lambda out: out[..., 0])
    with pytest.raises(MetricInputError, match="steps"):
        F.negative_perturbation(model, x, maps, steps=[1.5])


def test_clean_images_ride_in_the_first_perturbed_forward(batch):
    model, x, maps, y = batch
    rows: list[int] = []
    handle = model.register_forward_hook(lambda _m, args, _out: rows.append(args[0].shape[0]))
    try:
        bare = F.region_perturbation(model, x, maps, y.tolist(), patch_size=8, regions_evaluation=16, batch_size=32)
        # 3 images × 16 patches = 48 perturbed rows in chunks of 32; the 3 clean images join the first
        assert rows == [3 + 32, 16]
        with shared_forwards(model):
            image_logits(model, x, 8)  # a memo that already knows the clean images: no clean rows
            rows.clear()
            known = F.region_perturbation(
                model, x, maps, y.tolist(), patch_size=8, regions_evaluation=16, batch_size=32
            )
        assert rows == [32, 16]
        rows.clear()
        # more clean images than an eighth of batch_size: they get a forward of their own (bounded peak memory)
        F.region_perturbation(model, x, maps, y.tolist(), patch_size=8, regions_evaluation=16, batch_size=16)
        assert rows == [3, 16, 16, 16]
    finally:
        handle.remove()
    np.testing.assert_allclose(bare.curves, known.curves, atol=1e-6)


def test_keywords_are_quantus_names_and_defaults(batch):
    signature = inspect.signature(F.monotonicity_correlation).parameters
    assert signature["abs"].default is True and signature["perturb_baseline"].default == "uniform"
    assert signature["softmax"].default is True and signature["features_in_step"].default == 1
    assert inspect.signature(F.faithfulness_correlation).parameters["softmax"].default is False
    infidelity = inspect.signature(F.infidelity).parameters
    assert infidelity["normalise"].default is False and infidelity["n_perturb_samples"].default == 10
    assert inspect.signature(F.irof).parameters["perturb_baseline"].default == "mean"
    quantus_keywords = "batch_size abs normalise perturb_baseline softmax patch_size order regions_evaluation seed"
    assert get_metric("region_perturbation").params == tuple(quantus_keywords.split())
    assert get_metric("positive_perturbation").image_stats and not get_metric("pixel_flipping").image_stats
    model, x, maps, y = batch
    with pytest.raises(MetricInputError, match="pixel_flipping takes no parameter 'patch_size'"):
        F.pixel_flipping(model, x, maps, y.tolist(), patch_size=4)
    with pytest.raises(MetricInputError, match="regions_evaluation must be a positive integer"):
        F.region_perturbation(model, x, maps, regions_evaluation=0)
