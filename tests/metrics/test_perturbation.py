"""Deletion / insertion, average drop / increase, confidence change."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange, DropInConfidence
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget as PgcTarget
from scipy.ndimage import gaussian_filter

from camscope.core.errors import MetricInputError
from camscope.metrics import average_drop_increase, confidence_change, deletion, insertion
from camscope.metrics.deletion import gaussian_blur, normalised_auc, rise_blur_kernel

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


def region_map(n: int = 1) -> np.ndarray:
    maps = np.zeros((n, 8, 8), dtype=np.float32)
    maps[:, :4, :4] = 1.0
    return maps


def test_deletion_curve_by_hand(region_model):
    """The right map removes the 16 region pixels 4 per step (ties in raster order): mean 1 -> 0."""
    x = torch.ones(1, 3, 8, 8)
    result = deletion(region_model, x, region_map(), 0, step=4, batch_size=5)
    means = np.array([1, 0.75, 0.5, 0.25] + [0.0] * 13)
    expected = sigmoid(4 * means)
    assert result.curves.shape == (1, 17)
    np.testing.assert_allclose(result.curves[0], expected, rtol=1e-6)
    by_hand = (expected.sum() - expected[0] / 2 - expected[-1] / 2) / 16
    np.testing.assert_allclose(result.auc, [by_hand], rtol=1e-6)
    # the map that points away from the region deletes it last: a larger (worse) AUC
    worse = deletion(region_model, x, 1 - region_map(), 0, step=4)
    assert worse.auc[0] > result.auc[0]


def test_insertion_curve_by_hand(region_model):
    x = torch.ones(1, 3, 8, 8)
    result = insertion(region_model, x, region_map(), 0, step=4, substrate=torch.zeros(1, 3, 8, 8))
    means = np.array([0.0, 0.25, 0.5, 0.75] + [1.0] * 13)
    np.testing.assert_allclose(result.curves[0], sigmoid(4 * means), rtol=1e-6)


def test_default_step_is_width_and_batches_are_bounded(region_model):
    x = torch.rand(3, 3, 8, 8)
    result = deletion(region_model, x, np.random.rand(3, 8, 8), batch_size=4)
    assert result.step == 8 and result.curves.shape == (3, 9)
    assert max(region_model.batches) <= 4  # memory grows with batch_size, not with steps
    assert all(region_model.inference)


def test_batch_size_does_not_change_results(cnn):
    torch.manual_seed(1)
    x, maps = torch.randn(2, 3, 16, 16), np.random.rand(2, 16, 16)
    a = insertion(cnn, x, maps, [1, 2], step=16, batch_size=1)
    b = insertion(cnn, x, maps, [1, 2], step=16, batch_size=64)
    np.testing.assert_allclose(a.curves, b.curves, atol=1e-6)


def test_constant_map_is_defined(region_model):
    """A constant map removes pixels in raster order: the region (top-left) goes in the first rows."""
    x = torch.ones(1, 3, 8, 8)
    result = deletion(region_model, x, np.full((1, 8, 8), 0.3), 0, step=8)
    assert np.isfinite(result.curves).all()
    means = np.array([1, 0.75, 0.5, 0.25, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(result.curves[0], sigmoid(4 * means), rtol=1e-6)


def test_rise_blur_kernel_matches_rise_gkern():
    impulse = np.zeros((11, 11))
    impulse[5, 5] = 1
    np.testing.assert_allclose(rise_blur_kernel(), gaussian_filter(impulse, 5))
    blurred = gaussian_blur(torch.ones(1, 3, 40, 40))
    assert torch.allclose(blurred[0, :, 15:25, 15:25], torch.ones(3, 10, 10), atol=1e-6)


def test_auc_of_a_flat_curve_is_its_value():
    np.testing.assert_allclose(normalised_auc(np.full((2, 5), 0.7)), [0.7, 0.7])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"step": 0}, "step"), ({"substrate": "noise"}, "substrate"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_parameters(region_model, kwargs, message):
    with pytest.raises(MetricInputError, match=message):
        deletion(region_model, torch.ones(1, 3, 8, 8), region_map(), **kwargs)


@pytest.mark.parametrize("maps", [np.zeros((1, 4, 4)), np.zeros((2, 8, 8)), np.zeros((8, 8))])
def test_wrong_map_shape(region_model, maps):
    with pytest.raises(MetricInputError, match="maps"):
        insertion(region_model, torch.ones(1, 3, 8, 8), maps)


def test_average_drop_by_construction(region_model):
    """Image space: a map of 1 on the region keeps it (no drop); a map of 0.5 halves the image."""
    img = torch.full((1, 3, 8, 8), 0.8)
    x = (img - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    normalised_mean = float(x[:, :, :4, :4].mean())
    keep = average_drop_increase(region_model, x, region_map(), 0)
    np.testing.assert_allclose(keep.drop, [0.0], atol=1e-6)
    half = average_drop_increase(region_model, x, np.full((1, 8, 8), 0.5), 0)
    half_img = (0.4 - torch.tensor(MEAN)) / torch.tensor(STD)
    y, o = sigmoid(4 * normalised_mean), sigmoid(4 * float(half_img.mean()))
    np.testing.assert_allclose(half.drop, [max(0, y - o) / y], rtol=1e-5)
    assert half.increase[0] == (o > y)
    assert half.average_drop == pytest.approx(100 * half.drop[0])
    # pytorch-grad-cam's space: the product on the normalised tensor
    norm = average_drop_increase(region_model, x, np.full((1, 8, 8), 0.5), 0, space="normalized")
    np.testing.assert_allclose(norm.explanation_scores, [sigmoid(2 * normalised_mean)], rtol=1e-6)


def test_average_drop_increase_flag(region_model):
    """A darker image (negative normalised mean) gains confidence when the map zeroes it (normalised)."""
    x = torch.full((1, 3, 8, 8), -1.0)
    result = average_drop_increase(region_model, x, np.zeros((1, 8, 8)), 0, space="normalized")
    assert result.increase[0] and result.drop[0] == 0 and result.increase_in_confidence == 100


def test_confidence_change_matches_pytorch_grad_cam(cnn):
    torch.manual_seed(2)
    x = torch.randn(3, 3, 16, 16)
    cams = np.random.rand(3, 16, 16).astype(np.float32)
    targets = [PgcTarget(c) for c in (0, 3, 4)]
    ours = confidence_change(cnn, x, cams, targets, batch_size=2).change
    theirs = CamMultImageConfidenceChange()(x, cams, targets, cnn)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(np.maximum(-ours, 0), DropInConfidence()(x, cams, targets, cnn), atol=1e-5)
