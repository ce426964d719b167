"""The synthetic dataset: determinism, exact ground truth, and no class shortcut but the shape."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from camscope.data import CLASS_NAMES, generate
from camscope.data.synthetic import COVERAGE_RANGE, boxes_from_masks
from camscope.errors import CamscopeError


@pytest.fixture(scope="module")
def batch():
    return generate(600, seed=7, counterfactual=True)


@pytest.fixture(scope="module")
def big():
    """Enough images for the shortcut baselines (train 3000 / test 1000)."""
    return generate(4000, seed=11)


def test_types_and_shapes(batch) -> None:
    n = len(batch)
    assert n == 600 and len(CLASS_NAMES) == 10 and batch.class_names == CLASS_NAMES
    assert batch.images.dtype == np.uint8 and batch.images.shape == (n, 64, 64, 3)
    assert batch.labels.dtype == np.int64 and batch.labels.shape == (n,)
    assert batch.masks.dtype == bool and batch.masks.shape == (n, 64, 64)
    assert batch.boxes.dtype == np.int64 and batch.boxes.shape == (n, 4)
    assert batch.counterfactual is not None and batch.counterfactual.shape == batch.images.shape
    assert set(np.unique(batch.labels)) == set(range(10))
    assert generate(3, seed=0).counterfactual is None


def test_other_sizes() -> None:
    small = generate(5, seed=1, size=96, counterfactual=True)
    assert small.images.shape == (5, 96, 96, 3) and small.masks.shape == (5, 96, 96)
    assert len(generate(0, seed=1)) == 0


def test_deterministic_for_a_seed_and_independent_of_n(batch) -> None:
    again = generate(600, seed=7, counterfactual=True)
    for name in ("images", "labels", "masks", "boxes", "counterfactual"):
        np.testing.assert_array_equal(getattr(again, name), getattr(batch, name))
    head = generate(10, seed=7)
    np.testing.assert_array_equal(head.images, batch.images[:10])
    np.testing.assert_array_equal(head.masks, batch.masks[:10])
    assert not np.array_equal(generate(10, seed=8).images, head.images)


def test_boxes_are_the_tight_boxes_of_the_masks(batch) -> None:
    for mask, (x1, y1, x2, y2) in zip(batch.masks, batch.boxes):
        ys, xs = np.nonzero(mask)
        assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    empty = np.zeros((1, 8, 8), bool)
    np.testing.assert_array_equal(boxes_from_masks(empty), [[0, 0, 0, 0]])


def test_one_whole_object_per_image(batch) -> None:
    for mask in batch.masks:
        assert ndimage.label(mask, structure=np.ones((3, 3)))[1] == 1  # every shape is one piece
    border = batch.masks[:, [0, -1], :].any(axis=(1, 2)) | batch.masks[:, :, [0, -1]].any(axis=(1, 2))
    assert border.mean() < 0.02  # objects are placed inside the image, not cut by its edge


def test_coverage_spans_the_intended_range(batch) -> None:
    coverage = batch.masks.mean(axis=(1, 2))
    low, high = COVERAGE_RANGE
    assert coverage.min() >= low - 0.01 and coverage.max() <= high + 0.01
    assert coverage.min() < low + 0.02 and coverage.max() > high - 0.06  # both ends are used
    per_class = [coverage[batch.labels == k].mean() for k in range(10)]
    assert max(per_class) - min(per_class) < 0.03  # area says nothing about the class


def test_counterfactual_differs_only_under_the_object(batch) -> None:
    outside = ~batch.masks
    np.testing.assert_array_equal(batch.counterfactual[outside], batch.images[outside])
    diff = np.abs(batch.images.astype(int) - batch.counterfactual.astype(int)).sum(axis=-1)
    inside_change = np.array([d[m].mean() for d, m in zip(diff, batch.masks)])
    assert np.median(inside_change) > 60  # the object stands out from what is behind it


def test_counterfactual_is_in_distribution(batch) -> None:
    """Removing the object leaves clutter and background statistics as they are elsewhere."""
    edges = np.abs(np.diff(batch.counterfactual.astype(int), axis=2)).sum(-1) > 60  # strokes and dots
    region = batch.masks[:, :, 1:]
    under, elsewhere = edges[region].mean(), edges[~region].mean()
    assert abs(under - elsewhere) < 0.5 * elsewhere  # clutter continues under the removed object


def test_invalid_arguments() -> None:
    for kwargs in ({"n": -1, "seed": 0}, {"n": 2, "seed": -3}, {"n": 2, "seed": 0, "size": 16}, {"n": 1.5, "seed": 0}):
        with pytest.raises(CamscopeError):
            generate(**kwargs)


def test_throughput_is_reported() -> None:
    """Timing is printed, not asserted (shared CI machines); benchmarks/bench_synthetic.py measures it."""
    start = time.perf_counter()
    generate(1000, seed=3)
    rate = 1000 / (time.perf_counter() - start)
    print(f"\nsynthetic generator: {rate:.0f} images/s at 64 px (one process)")
    assert rate > 0


# ---- no shortcut: colour and position alone do not give the class ------------------------------------------


def _colour_histograms(images: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Joint 4x4x4 RGB histogram of each image's pixels, weighted (e.g. by the mask), normalised."""
    n = len(images)
    quarter = images >> 6
    bins = (quarter[..., 0] * 16 + quarter[..., 1] * 4 + quarter[..., 2]).reshape(n, -1)
    bins = bins + 64 * np.arange(n)[:, None]
    counts = np.bincount(bins.ravel(), weights=weights.reshape(-1), minlength=64 * n).reshape(n, 64)
    return counts / counts.sum(axis=1, keepdims=True)


def _shortcut_features(data) -> np.ndarray:
    """Colour of the whole image, colour of the object, where the object is and how big it is."""
    size = data.masks.shape[1]
    grid = np.arange(size) / size
    area = data.masks.sum(axis=(1, 2))
    centre_x = (data.masks * grid[None, None, :]).sum(axis=(1, 2)) / area
    centre_y = (data.masks * grid[None, :, None]).sum(axis=(1, 2)) / area
    box_centre = (data.boxes[:, :2] + data.boxes[:, 2:]) / (2 * size)
    return np.column_stack(
        [
            _colour_histograms(data.images, np.ones(data.masks.shape, np.float32)),
            _colour_histograms(data.images, data.masks.astype(np.float32)),
            centre_x,
            centre_y,
            area / size**2,
            box_centre,
        ]
    )


def _shape_features(data) -> np.ndarray:
    """A positive control: the radial profile of the mask, which does carry the shape."""
    rows = []
    for mask in data.masks:
        ys, xs = np.nonzero(mask)
        radius = np.hypot(xs - xs.mean(), ys - ys.mean()) / np.sqrt(len(xs))
        rows.append(np.histogram(radius, bins=16, range=(0, 1.2))[0] / len(xs))
    return np.array(rows)


def _logistic_accuracy(features: np.ndarray, labels: np.ndarray, train: int) -> float:
    """Multinomial logistic regression by gradient descent (numpy); accuracy on the held-out rows."""
    mean, std = features[:train].mean(0), features[:train].std(0) + 1e-6
    x = np.hstack([(features - mean) / std, np.ones((len(features), 1))]).astype(np.float32)
    onehot = np.eye(10, dtype=np.float32)[labels[:train]]
    weights = np.zeros((x.shape[1], 10), np.float32)
    for _ in range(300):
        logits = x[:train] @ weights
        prob = np.exp(logits - logits.max(1, keepdims=True))
        prob /= prob.sum(1, keepdims=True)
        weights -= 0.5 * (x[:train].T @ (prob - onehot) / train + 1e-3 * weights)
    return float(((x[train:] @ weights).argmax(1) == labels[train:]).mean())


def test_colour_and_position_do_not_reveal_the_class(big) -> None:
    accuracy = _logistic_accuracy(_shortcut_features(big), big.labels, train=3000)
    print(f"\ncolour-histogram + position baseline: {accuracy:.3f} (chance 0.100)")
    assert accuracy < 0.2


def test_the_baseline_can_find_signal_when_there_is_some(big) -> None:
    accuracy = _logistic_accuracy(_shape_features(big), big.labels, train=3000)
    print(f"\nmask radial-profile control: {accuracy:.3f}")
    assert accuracy > 0.6
