"""ROAD: imputation, parity with pytorch-grad-cam 1.5.7, and the official tie-breaking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics import road as pgc_road
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget as PgcTarget

from camscope.core.errors import MetricInputError
from camscope.metrics import road
from camscope.metrics.imputation import impute_batch
from camscope.metrics.road import _official_keep, _pytorch_grad_cam_keep

# pytorch-grad-cam 1.5.7's ROAD passes torch tensors to np.argwhere, whose __array_wrap__ NumPy 2 deprecates:
# the reference's warning, in every test here that runs it, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning")


def test_imputation_matches_pytorch_grad_cam():
    torch.manual_seed(0)
    images, keep = torch.randn(2, 3, 24, 30), torch.rand(2, 24, 30) > 0.5
    theirs = torch.stack([pgc_road.NoisyLinearImputer(noise=0.0)(images[i], keep[i].float()) for i in range(2)])
    ours = impute_batch(images, keep, noise=0.0)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    # with noise: the same draws from the same seed
    torch.manual_seed(3)
    theirs = torch.stack([pgc_road.NoisyLinearImputer()(images[i], keep[i].float()) for i in range(2)])
    ours = impute_batch(images, keep, noise=0.01, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_images_that_share_a_mask_share_one_factorisation(monkeypatch):
    """Equal masks are one system with more right-hand sides: one LU per distinct mask, and each image's
    values exactly as if it were imputed alone (noise included: drawn per image in batch order)."""
    import camscope.metrics.imputation as imputation

    torch.manual_seed(0)
    images = torch.randn(5, 3, 24, 30)
    a, b = torch.rand(24, 30) > 0.5, torch.rand(24, 30) > 0.3
    keep = torch.stack([a, b, a, a, b])
    factorisations = []
    real_splu = imputation.spla.splu
    monkeypatch.setattr(imputation.spla, "splu", lambda *args, **kw: factorisations.append(1) or real_splu(*args, **kw))
    together = impute_batch(images, keep, noise=0.01, generator=torch.Generator().manual_seed(5))
    assert len(factorisations) == 2
    generator = torch.Generator().manual_seed(5)
    alone = torch.cat([impute_batch(images[i : i + 1], keep[i : i + 1], generator=generator) for i in range(5)])
    assert torch.equal(together, alone)


def test_linear_imputation_is_exact_on_a_ramp():
    """Away from the border the 8-neighbour weighted mean of a linear function is the function."""
    yy, xx = torch.meshgrid(torch.arange(20.0), torch.arange(20.0), indexing="ij")
    ramp = (0.3 * yy - 0.1 * xx + 2).expand(1, 3, 20, 20)
    keep = torch.ones(1, 20, 20, dtype=torch.bool)
    keep[0, 5:15, 4:12] = False
    torch.testing.assert_close(impute_batch(ramp, keep, noise=0.0), ramp, atol=1e-5, rtol=0)


def test_nothing_kept_is_defined():
    out = impute_batch(torch.randn(1, 3, 6, 6), torch.zeros(1, 6, 6, dtype=torch.bool), noise=0.0, fill=0.5)
    assert torch.equal(out, torch.full((1, 3, 6, 6), 0.5))


@pytest.fixture
def batch(cnn):
    torch.manual_seed(4)
    x = torch.randn(2, 3, 20, 20)
    cams = np.random.rand(2, 20, 20).astype(np.float32)
    cams[1, :12] = 0.0  # 60 % exact zeros
    return cnn, x, cams, [PgcTarget(1), PgcTarget(3)]


def test_combined_matches_pytorch_grad_cam_with_the_same_seed(batch):
    model, x, cams, targets = batch
    pct = [20, 50, 80]
    torch.manual_seed(11)
    theirs = pgc_road.ROADCombined(percentiles=pct)(x, cams, targets, model)
    ours = road(model, x, cams, targets, percentages=pct, compat="pytorch-grad-cam", seed=11, batch_size=4)
    np.testing.assert_allclose(ours.combined, theirs, atol=1e-5)


def test_morf_and_lerf_match_pytorch_grad_cam_without_noise(batch, monkeypatch):
    model, x, cams, targets = batch
    monkeypatch.setattr(pgc_road.NoisyLinearImputer.__init__, "__defaults__", (0.0, pgc_road.neighbors_weights))
    pct = [10, 40, 90]
    morf = pgc_road.ROADMostRelevantFirstAverage(pct)(x, cams, targets, model)
    lerf = pgc_road.ROADLeastRelevantFirstAverage(pct)(x, cams, targets, model)
    ours = road(model, x, cams, targets, percentages=pct, compat="pytorch-grad-cam", noise=0.0)
    np.testing.assert_allclose(ours.morf, morf, atol=1e-5)
    np.testing.assert_allclose(ours.lerf, lerf, atol=1e-5)
    single = pgc_road.ROADMostRelevantFirst(percentile=40)(x, cams, targets, model)
    np.testing.assert_allclose(ours.morf_curves[:, 1], single, atol=1e-5)


def test_tie_breaking_differs_from_pytorch_grad_cam_on_purpose(batch):
    """Deliberate difference: on a map that is 60 % zeros, pytorch-grad-cam's LeRF "remove 10 %"
    (percentile 90) keeps only the non-zero 40 %, i.e. removes 60 %; the official code, and our default,
    breaks the ties with a seeded 1e-4 noise and removes exactly 10 %."""
    _, _, cams, _ = batch
    maps = torch.from_numpy(cams)
    theirs = _pytorch_grad_cam_keep(maps, [90], ["lerf"])["lerf"][0, 1]
    ours = _official_keep(maps, [10], ["lerf"], torch.Generator().manual_seed(0))["lerf"][0, 1]
    assert (~theirs).float().mean() == pytest.approx(0.6)
    assert (~ours).sum() == int(400 * 0.1)
    assert not (~ours)[12:].any()  # the removed 10 % are among the zeros


def test_official_mode_known_cases(cnn):
    torch.manual_seed(5)
    x = torch.randn(1, 3, 16, 16)
    flat = torch.full_like(x, 0.7)
    # a constant image is imputed exactly: every curve point is the clean probability
    result = road(cnn, flat, np.random.rand(1, 16, 16), 2, noise=0.0)
    clean = torch.softmax(cnn(flat), 1)[0, 2].item()
    np.testing.assert_allclose(result.morf_curves, clean, rtol=1e-5)
    np.testing.assert_allclose(result.combined, [0.0], atol=1e-6)
    # a constant map: ties broken by the seeded noise, finite, reproducible
    a = road(cnn, x, np.zeros((1, 16, 16)), seed=1)
    b = road(cnn, x, np.zeros((1, 16, 16)), seed=1)
    assert np.isfinite(a.morf_curves).all() and np.array_equal(a.lerf_curves, b.lerf_curves)
    assert a.summary().keys() == {"road_morf", "road_lerf", "road_combined"}
    # compat mode on a constant map keeps nothing at any percentile: still finite
    c = road(cnn, x, np.zeros((1, 16, 16)), compat="pytorch-grad-cam", percentages=[50])
    assert np.isfinite(c.combined).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"percentages": [100]}, "percentages"), ({"compat": "quantus"}, "compat"), ({"orders": ["x"]}, "orders")],
)
def test_bad_parameters(cnn, kwargs, message):
    with pytest.raises(MetricInputError, match=message):
        road(cnn, torch.randn(1, 3, 8, 8), np.zeros((1, 8, 8)), **kwargs)
