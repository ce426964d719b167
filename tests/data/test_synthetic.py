"""The synthetic dataset: determinism, exact ground truth, and no class shortcut but the shape."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from camscope.core.errors import InputError
from camscope.data import CLASS_NAMES, generate
from camscope.data.synthetic import COVERAGE_RANGE, boxes_from_masks


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
    np.testing.assert_array_equal(generate(260, seed=7).images[256:], batch.images[256:260])  # 2nd chunk too
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
        with pytest.raises(InputError):
            generate(**kwargs)


def test_throughput_is_reported() -> None:
    """Timing is printed, not asserted (shared CI machines); benchmarks/bench_synthetic.py measures it."""
    start = time.perf_counter()
    generate(1000, seed=3)
    rate = 1000 / (time.perf_counter() - start)
    print(f"\nsynthetic generator: {rate:.0f} images/s at 64 px (one process)")
    assert rate > 0


# ---- no shortcut: colour and position alone do not give the class ------------------------------------------


def _colour_bins(images: np.ndarray) -> np.ndarray:
    """Joint 4x4x4 RGB bin (0..63) of every pixel."""
    quarter = images >> 6
    return quarter[..., 0] * 16 + quarter[..., 1] * 4 + quarter[..., 2]


def _histograms(bins: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    counts = np.bincount(owner * 64 + bins, minlength=64 * n).reshape(n, 64)
    return counts / counts.sum(axis=1, keepdims=True)


def _shortcut_features(data) -> np.ndarray:
    """Colour of the whole image, colour of the object, where the object is and how big it is."""
    n, size = data.masks.shape[:2]
    bins = _colour_bins(data.images)
    every_other = bins[:, ::2, ::2].reshape(n, -1)  # a quarter of the pixels is plenty for the scene colour
    scene = _histograms(every_other.ravel(), np.repeat(np.arange(n), every_other.shape[1]), n)
    owner, ys, xs = np.nonzero(data.masks)
    area = np.bincount(owner, minlength=n)
    centre = np.stack([np.bincount(owner, weights=c, minlength=n) / area for c in (xs, ys)], axis=1) / size
    box_centre = (data.boxes[:, :2] + data.boxes[:, 2:]) / (2 * size)
    obj = _histograms(bins[owner, ys, xs], owner, n)
    return np.column_stack([scene, obj, centre, area / size**2, box_centre])


def _shape_features(data) -> np.ndarray:
    """A positive control: the radial profile of the mask, which does carry the shape."""
    rows = []
    for mask in data.masks:
        ys, xs = np.nonzero(mask)
        radius = np.hypot(xs - xs.mean(), ys - ys.mean()) / np.sqrt(len(xs))
        rows.append(np.histogram(radius, bins=16, range=(0, 1.2))[0] / len(xs))
    return np.array(rows)


def _baseline_accuracies(features: np.ndarray, labels: np.ndarray, train: int) -> tuple[float, float]:
    """Held-out accuracy of two cheap classifiers: a ridge (linear) one and 5-nearest-neighbours."""
    mean, std = features[:train].mean(0), features[:train].std(0) + 1e-6
    x = (features - mean) / std
    fit, test = x[:train], x[train:]
    onehot = np.eye(10)[labels[:train]] - 0.1
    weights = np.linalg.solve(fit.T @ fit + 10.0 * np.eye(x.shape[1]), fit.T @ onehot)
    ridge = ((test @ weights).argmax(1) == labels[train:]).mean()
    distances = (test**2).sum(1)[:, None] - 2 * test @ fit.T + (fit**2).sum(1)[None, :]
    nearest = labels[:train][np.argsort(distances, axis=1)[:, :5]]
    votes = np.apply_along_axis(np.bincount, 1, nearest, minlength=10)
    knn = (votes.argmax(1) == labels[train:]).mean()
    return float(ridge), float(knn)


def test_colour_and_position_do_not_reveal_the_class(big) -> None:
    ridge, knn = _baseline_accuracies(_shortcut_features(big), big.labels, train=3000)
    print(f"\ncolour-histogram + position baselines: ridge {ridge:.3f}, 5-NN {knn:.3f} (chance 0.100)")
    assert ridge < 0.2 and knn < 0.2


def test_the_baselines_find_signal_when_there_is_some(big) -> None:
    ridge, knn = _baseline_accuracies(_shape_features(big), big.labels, train=3000)
    print(f"\nmask radial-profile control: ridge {ridge:.3f}, 5-NN {knn:.3f}")
    assert ridge > 0.6 and knn > 0.6


def test_background_pool_shares_backgrounds_and_keeps_the_objects() -> None:
    """With a pool of one, every scene without its object is the same background up to the pixel noise."""
    plain = generate(40, 5)
    pooled = generate(40, 5, counterfactual=True, background_pool=1)
    assert np.array_equal(plain.labels, pooled.labels) and np.array_equal(plain.masks, pooled.masks)
    assert pooled.counterfactual is not None
    spread = pooled.counterfactual.astype(int).max(axis=0) - pooled.counterfactual.astype(int).min(axis=0)
    assert spread.max() <= 2 * 0.06 * 255 + 2  # the noise (±_NOISE) and rounding only
    varied = generate(40, 5, counterfactual=True, background_pool=16).counterfactual
    assert varied is not None and (varied.astype(int).max(axis=0) - varied.astype(int).min(axis=0)).max() > 100
    with pytest.raises(InputError):
        generate(4, 5, background_pool=0)


def test_plain_objects_change_only_the_object_pixels() -> None:
    """Same scenes, labels and masks; only pixels inside the object differ, and they lose the texture."""
    textured, plain = generate(64, 5), generate(64, 5, plain_objects=True)
    np.testing.assert_array_equal(textured.labels, plain.labels)
    np.testing.assert_array_equal(textured.masks, plain.masks)
    changed = (textured.images != plain.images).any(-1)
    assert not (changed & ~plain.masks).any()
    assert changed.any()

    def spread(batch) -> float:  # mean per-object colour spread (the pixel noise is the same in both)
        return float(np.mean([batch.images[i][batch.masks[i]].astype(float).std(0).mean() for i in range(64)]))

    assert spread(plain) < 0.7 * spread(textured)


def test_scene_factors_are_the_draws_behind_the_rendered_images():
    from camscope.data.synthetic import scene_factors

    n = 300  # more than one block of draws
    data, plain = generate(n, 5), generate(n, 5, plain_objects=True)
    factors = scene_factors(n, 5)
    assert np.array_equal(factors["label"], data.labels)
    assert set(factors) == {"label", "texture", "scale", "angle"} and all(len(v) == n for v in factors.values())
    # an image whose drawn texture is the solid one renders exactly as its untextured twin; the others do not
    same = (data.images == plain.images).all(axis=(1, 2, 3))
    assert np.array_equal(same, factors["texture"] == 0)


def test_scene_factors_name_the_pooled_background_each_scene_got() -> None:
    """Scenes with the same ``background`` factor share their object-removed background; others differ."""
    from camscope.data.synthetic import scene_factors

    n = 300  # more than one block of draws
    data = generate(n, 5, counterfactual=True, background_pool=4)
    factors = scene_factors(n, 5, background_pool=4)
    assert np.array_equal(factors["label"], data.labels) and set(np.unique(factors["background"])) == {0, 1, 2, 3}
    assert "background" not in scene_factors(8, 5)
    assert data.counterfactual is not None
    coarse = data.counterfactual.astype(float).reshape(n, 8, 8, 8, 8, 3).mean(axis=(2, 4))  # averages the noise out
    for i in range(0, n, 37):
        distance = np.abs(coarse - coarse[i]).mean(axis=(1, 2, 3))
        same = factors["background"] == factors["background"][i]
        assert distance[same].max() < 3 < 15 < distance[~same].min()
    with pytest.raises(InputError):
        scene_factors(4, 5, background_pool=0)


@pytest.mark.parametrize("same_appearance", [True, False])
def test_twins_are_the_same_object_elsewhere_on_another_background(same_appearance) -> None:
    """First of the pair is ``generate``'s scene; the twin keeps class, size and angle (and, with
    ``same_appearance``, the object's colours) but moves it and redraws the background."""
    from camscope.data.synthetic import generate_twins

    n = 300  # more than one block of draws
    first, twin = generate_twins(n, 5, same_appearance=same_appearance)
    plain = generate(n, 5)
    assert np.array_equal(first.images, plain.images) and np.array_equal(twin.labels, plain.labels)
    area, twin_area = first.masks.sum((1, 2)), twin.masks.sum((1, 2))
    assert np.abs(twin_area / area - 1).max() < 0.1  # same size: only the sub-pixel placement differs
    assert (np.abs(first.boxes - twin.boxes).max(1) > 2).mean() > 0.6  # and elsewhere (big ones cannot move far)
    outside = ~first.masks & ~twin.masks
    change = [np.abs(first.images[i][outside[i]].astype(int) - twin.images[i][outside[i]]).mean() for i in range(n)]
    assert np.mean(change) > 30  # a new background

    def colour(batch, i):  # median colour of the object: its main colour for most textures
        return np.median(batch.images[i][batch.masks[i]].astype(float), axis=0)

    distance = np.array([np.abs(colour(first, i) - colour(twin, i)).max() for i in range(n)])
    if same_appearance:
        assert np.median(distance) < 25
    else:
        assert np.median(distance) > 50
    again = generate_twins(n, 5, same_appearance=same_appearance)[1]
    assert np.array_equal(again.images, twin.images)
    plain_twin = generate_twins(40, 5, plain_objects=True)
    assert np.array_equal(plain_twin[0].images, generate(40, 5, plain_objects=True).images)
