"""Localisation family (top_k_intersection, attribution_localisation, auc, focus) against Quantus 0.6.0,
the segmentation protocol against per-image scikit-learn oracles, and the mosaics Focus runs on."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from sklearn.metrics import average_precision_score, jaccard_score, roc_auc_score
from torch import nn

from camscope.cli import main
from camscope.core.errors import CamscopeWarning, InputError, MetricInputError
from camscope.data.mosaic import generate_mosaics, quadrant_flags
from camscope.data.synthetic import generate
from camscope.metrics import (
    attribution_localisation,
    auc,
    focus,
    get_metric,
    relevance_rank,
    segmentation,
    top_k_intersection,
)
from tests.metrics.quantus_helpers import PER_IMAGE, quantus, quantus_scores
from tests.sweep.helpers import write_config

SIDE = 32


def _inputs(seed: int, n: int = 3, channels: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images, signed maps without ties, and one box-like mask per image (different sizes)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, channels, SIDE, SIDE))
    a = rng.normal(size=(n, SIDE, SIDE)) * rng.uniform(0.5, 3, size=(n, 1, 1))
    s = np.zeros((n, SIDE, SIDE), bool)
    for i in range(n):
        r0, c0 = rng.integers(0, SIDE // 2, size=2)
        s[i, r0 : r0 + rng.integers(4, SIDE // 2), c0 : c0 + rng.integers(4, SIDE // 2)] = True
    return x, a, s


def _peer(metric, x, a, s, **call):
    return quantus_scores(
        metric, model=call.pop("model", None), x_batch=x, y_batch=np.zeros(len(x), int), a_batch=a.copy(), **call
    )


@pytest.mark.parametrize(
    "kwargs", [{}, {"k": 50}, {"k": 200, "abs": True}, {"k": 100, "concept_influence": True}, {"normalise": False}]
)
def test_top_k_intersection_equals_quantus(kwargs):
    x, a, s = _inputs(0)
    metric = quantus.TopKIntersection(normalise_func_kwargs=PER_IMAGE, disable_warnings=True, **kwargs)
    expected = _peer(metric, x, a, s, s_batch=s[:, None].astype(float))
    ours = get_metric("top_k_intersection")(None, x, a, None, ground_truth=s, **kwargs).summary()["top_k_intersection"]
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)


def test_top_k_shares_ties_at_the_cut_as_relevance_rank_does():
    """A constant map: every pixel ties, so the expected hit rate is the mask's area fraction (Quantus
    would take argsort's order). With k = |GT| it is relevance rank accuracy."""
    _, _, s = _inputs(1, n=2)
    flat = np.ones((2, SIDE, SIDE))
    np.testing.assert_allclose(top_k_intersection(flat, s, k=37).scores, s.mean(axis=(1, 2)))
    maps = np.round(np.random.default_rng(2).random((2, SIDE, SIDE)), 1)  # many ties
    for i in range(2):
        k = int(s[i].sum())
        np.testing.assert_allclose(
            top_k_intersection(maps[i : i + 1], s[i : i + 1], k=k).scores,
            relevance_rank(maps[i : i + 1], s[i : i + 1]).scores,
        )


@pytest.mark.parametrize(
    "kwargs", [{}, {"abs": False}, {"positive_attributions": True, "abs": False}, {"weighted": True}]
)
def test_attribution_localisation_equals_quantus(kwargs):
    """Three one-channel images: the only batch on which Quantus's ``x_batch[2:].size`` is H·W, the area
    its ``weighted`` variant should divide by (on any other batch its weighted score is off by a factor)."""
    x, a, s = _inputs(3, n=3, channels=1)
    metric = quantus.AttributionLocalisation(normalise_func_kwargs=PER_IMAGE, disable_warnings=True, **kwargs)
    expected = _peer(metric, x, a, s, s_batch=s[:, None].astype(float))
    signed = kwargs == {"abs": False}  # shares above 1 are NaN, with a warning (Quantus: NaN too)
    with pytest.warns(CamscopeWarning, match="negative") if signed else contextlib.nullcontext():
        ours = attribution_localisation(a, s, **kwargs).scores
    np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=0)


def test_attribution_localisation_weighted_is_the_area_fraction():
    _, a, s = _inputs(4, n=5)
    plain = attribution_localisation(a, s).scores
    weighted = attribution_localisation(a, s, weighted=True).scores
    np.testing.assert_allclose(weighted, plain * s.mean(axis=(1, 2)))
    with pytest.warns(CamscopeWarning, match="max_size"):
        attribution_localisation(a, s, max_size=0.01)


@pytest.mark.parametrize("kwargs", [{}, {"abs": True}])
def test_auc_equals_quantus_with_ties(kwargs):
    x, a, s = _inputs(5)
    a = np.round(a, 1)  # many ties: the rank formula must count them as roc_curve does
    expected = _peer(
        quantus.AUC(normalise_func_kwargs=PER_IMAGE, disable_warnings=True, **kwargs), x, a, s, s_batch=s[:, None] * 1.0
    )
    np.testing.assert_allclose(auc(a, s, **kwargs).scores, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(
        auc(a, s).scores, [roc_auc_score(s[i].ravel(), a[i].ravel()) for i in range(len(a))], atol=1e-12
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("signed", [False, True])
def test_auc_is_exact_on_each_kind_of_sort_key(dtype, signed):
    """The rank keys differ by dtype and sign (31 float32 bits, float32 in 64 bits, float64): each must
    give roc_auc_score's value, with ties, and -0.0 tied with 0.0."""
    _, a, s = _inputs(7)
    a = np.round(a * 4) / 4  # ties, exactly representable in float32 too
    a = (a if signed else np.abs(a)).astype(dtype)
    a[:, 0, :4] = -0.0 if signed else 0.0
    a[:, 1, :4] = 0.0
    expected = [roc_auc_score(s[i].ravel(), a[i].ravel().astype(np.float64)) for i in range(len(a))]
    np.testing.assert_allclose(auc(a, s).scores, expected, atol=1e-12, rtol=0)
    np.testing.assert_allclose(auc(torch.from_numpy(a), s).scores, expected, atol=1e-12, rtol=0)


def test_auc_of_a_whole_image_mask_is_nan_with_a_warning():
    _, a, s = _inputs(6, n=2)
    s[1] = True
    with pytest.warns(CamscopeWarning, match="whole image"):
        scores = auc(a, s).scores
    assert np.isfinite(scores[0]) and np.isnan(scores[1])


@pytest.mark.parametrize("kwargs", [{}, {"abs": True}])
def test_focus_equals_quantus_on_generated_mosaics(kwargs):
    mosaics = generate_mosaics(3, seed=0)
    rng = np.random.default_rng(7)
    a = rng.normal(size=(3, 64, 64))
    x = mosaics.images.transpose(0, 3, 1, 2).astype(np.float32) / 255
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 10))  # Quantus insists on one; Focus never runs it
    metric = quantus.Focus(normalise_func_kwargs=PER_IMAGE, disable_warnings=True, **kwargs)
    expected = _peer(metric, x, a, None, model=model, custom_batch=quadrant_flags(mosaics.masks))
    np.testing.assert_allclose(focus(a, mosaics.masks, **kwargs).scores, expected, atol=1e-5, rtol=0)


def test_mosaics_hold_two_target_tiles_and_are_stable_per_index():
    mosaics = generate_mosaics(4, seed=1)
    flags = quadrant_flags(mosaics.masks)
    assert (flags.sum(1) == 2).all()
    assert mosaics.masks.mean(axis=(1, 2)).tolist() == [0.5] * 4  # whole tiles, not object masks
    np.testing.assert_array_equal(generate_mosaics(2, seed=1).images, mosaics.images[:2])
    # every tile is a scene of the generator; the target tiles are of the mosaic's class
    tiles = generate(4 * 16, 1, 32)
    for i in range(4):
        for q, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            tile = mosaics.images[i, r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32]
            match = [j for j in range(len(tiles)) if np.array_equal(tiles.images[j], tile)]
            assert match, (i, q)
            assert (tiles.labels[match[0]] == mosaics.labels[i]) == bool(flags[i, q])
    perfect = mosaics.masks.astype(float)
    np.testing.assert_allclose(focus(perfect, mosaics.masks).scores, 1.0, atol=1e-9)
    with pytest.raises(InputError, match="even integer"):
        generate_mosaics(1, 0, size=48)


@pytest.mark.parametrize("threshold", [None, 0.3])
def test_segmentation_protocol_equals_per_image_oracles(threshold):
    """Oracle: Chefer et al.'s protocol written out per image with scikit-learn."""
    _, a, s = _inputs(8, n=4)
    a = np.round(np.abs(a), 1)  # ties, as CAMs have
    result = segmentation(a, s, threshold=threshold)
    for i in range(len(a)):
        r = (a[i] - a[i].min()) / (a[i].max() - a[i].min())
        fg = (r > (r.mean() if threshold is None else threshold)).ravel()
        truth = s[i].ravel()
        assert result.pixel_accuracy[i] == pytest.approx((fg == truth).mean())
        miou = (jaccard_score(truth, fg) + jaccard_score(~truth, ~fg)) / 2
        assert result.miou[i] == pytest.approx(miou)
        ap = average_precision_score(np.concatenate([~truth, truth]), np.concatenate([1 - r.ravel(), r.ravel()]))
        assert result.ap[i] == pytest.approx(ap)
    assert next(iter(result.summary())) == "segmentation_miou"


def test_segmentation_of_the_true_mask_is_perfect():
    _, _, s = _inputs(9, n=2)
    result = segmentation(s.astype(float), s)
    for values in result.summary().values():
        np.testing.assert_allclose(values, 1.0)


def test_torch_maps_give_the_same_scores():
    _, a, s = _inputs(10)
    t = torch.from_numpy(a)
    for func in (top_k_intersection, attribution_localisation, auc, focus):
        np.testing.assert_allclose(func(t, s).scores, func(a, s).scores, rtol=0, atol=1e-12)
    np.testing.assert_allclose(segmentation(t, s).miou, segmentation(a, s).miou, rtol=0, atol=1e-12)


def test_bad_parameters_are_one_clear_error():
    _, a, s = _inputs(11)
    for k in (0, SIDE * SIDE + 1, 2.5, True):
        with pytest.raises(MetricInputError, match="k must be"):
            top_k_intersection(a, s, k=k)
    with pytest.raises(MetricInputError, match="max_size"):
        attribution_localisation(a, s, max_size=0)
    with pytest.raises(MetricInputError, match="threshold"):
        segmentation(a, s, threshold=1.5)
    with pytest.raises(MetricInputError, match="empty"):
        auc(a, np.zeros_like(s))
    for name in ("top_k_intersection", "attribution_localisation", "auc", "focus", "segmentation"):
        metric = get_metric(name)
        assert metric.needs_ground_truth
        with pytest.raises(MetricInputError, match="needs ground truth"):
            metric(None, None, a, None)


@pytest.mark.slow
def test_evaluate_cli_scores_mosaics_for_their_class(capsys):
    names = "focus,top_k_intersection,attribution_localisation,auc,segmentation"
    args = ["evaluate", "--model", "mini_resnet", "--synthetic", "2", "--mosaic", "--metrics", names, "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    mosaics = generate_mosaics(2, 0)
    assert [row["target"] for row in out["images"]] == mosaics.labels.tolist()
    for row in out["images"]:
        for column in ("focus", "top_k_intersection", "attribution_localisation", "auc", "segmentation_miou"):
            assert 0 <= row[column] <= 1
    assert main(["evaluate", "x.png", "--model", "mini_resnet", "--metrics", "focus"]) == 2
    assert main(["evaluate", "--model", "mini_resnet", "--mosaic", "--metrics", "focus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("camscope: error:") for line in err)


@pytest.mark.slow
def test_a_sweep_scores_focus_on_mosaics(tmp_path):
    from camscope.sweep import ResultsStore, load_config, run_sweep

    config = load_config(
        write_config(
            tmp_path / "sweep.toml",
            models=[{"name": "mini_resnet", "random_weights": True}],
            methods=["gradcam"],
            images={"source": "mosaic:2", "seed": 0},
            targets="label",
            metrics={"focus": {}, "segmentation": {"threshold": 0.5}},
        )
    )
    assert config.images.mosaic
    assert not run_sweep(config, progress=False, out=io.StringIO()).failures
    table = ResultsStore(config.output).read()
    rows = table.filter(pc.equal(table["metric"], "focus"))
    assert rows.num_rows == 2
    assert all(value.startswith("mosaic-0-") for value in rows["image_id"].to_pylist())
    assert all(0 <= value <= 1 for value in rows["value"].to_pylist())
    assert table.filter(pc.equal(table["metric"], "segmentation_miou")).num_rows == 2
