"""Pointing game, energy pointing game, relevance mass and rank, against hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from camscope.core.errors import MetricInputError
from camscope.metrics import (
    energy_pointing_game,
    get_metric,
    pointing_game,
    relevance_mass,
    relevance_rank,
)


def peak_map(row: int, col: int, size: int = 64) -> np.ndarray:
    m = np.zeros((1, size, size))
    m[0, row, col] = 1.0
    return m


BOX = [np.array([[30.0, 30.0, 40.0, 40.0]])]  # pixels 30..39 in both directions


def test_pointing_hit_inside_box():
    result = pointing_game(peak_map(35, 35), BOX)
    assert result.scores.tolist() == [1.0] and result.points.tolist() == [[35, 35]]


def test_pointing_tolerance_is_torchray_strict_disk():
    # peak at column 54: the nearest box pixel (row 35, col 39) is 15 px away -> not < 15: miss
    assert pointing_game(peak_map(35, 54), BOX).scores[0] == 0
    assert pointing_game(peak_map(35, 53), BOX).scores[0] == 1  # 14 px
    assert pointing_game(peak_map(35, 54), BOX, tolerance=16).scores[0] == 1
    assert pointing_game(peak_map(35, 40), BOX, tolerance=0).scores[0] == 0
    assert pointing_game(peak_map(35, 39), BOX, tolerance=0).scores[0] == 1


def test_pointing_several_boxes_per_image_and_batch():
    maps = np.concatenate([peak_map(5, 5), peak_map(60, 60), peak_map(35, 35)])
    gt = [
        np.array([[0, 0, 10, 10], [50, 50, 64, 64]]),
        np.array([[0, 0, 10, 10], [50, 50, 64, 64]]),
        np.array([[0, 0, 4, 4]]),
    ]
    assert pointing_game(maps, gt, tolerance=0).scores.tolist() == [1, 1, 0]


def test_pointing_constant_map_points_at_first_pixel():
    result = pointing_game(np.full((1, 64, 64), 0.5), [np.array([[0, 0, 1, 1]])], tolerance=0)
    assert result.points.tolist() == [[0, 0]] and result.scores[0] == 1


def test_empty_mask_is_an_error_not_a_hit():
    with pytest.raises(MetricInputError, match="empty"):
        pointing_game(peak_map(1, 1), np.zeros((1, 64, 64), dtype=bool))


def test_box_outside_the_image_is_an_error():
    with pytest.raises(MetricInputError, match="outside"):
        pointing_game(peak_map(1, 1), [np.array([[50, 50, 70, 60]])])


def test_energy_pointing_by_construction():
    m = np.zeros((1, 64, 64))
    m[0, 30:40, 30:40] = 1.0  # 100 px of energy 1 inside
    m[0, 0:10, 0:5] = 0.5  # 50 px of energy 0.5 outside
    np.testing.assert_allclose(energy_pointing_game(m, BOX).scores, [100 / 125])
    mask = np.zeros((1, 64, 64), dtype=bool)
    mask[0, 30:40, 30:40] = True
    np.testing.assert_allclose(relevance_mass(m, mask).scores, [100 / 125])


def test_energy_of_constant_and_zero_maps_is_defined():
    np.testing.assert_allclose(energy_pointing_game(np.ones((1, 64, 64)), BOX).scores, [100 / 64**2])
    assert energy_pointing_game(np.zeros((1, 64, 64)), BOX).scores.tolist() == [0.0]


def test_relevance_rank_by_construction():
    mask = np.zeros((1, 4, 4), dtype=bool)
    mask[0, 0, :] = True  # K = 4
    m = np.zeros((1, 4, 4))
    m[0, 0, :3] = [0.9, 0.8, 0.7]
    m[0, 3, 3] = 0.95  # one of the top 4 lies outside
    np.testing.assert_allclose(relevance_rank(m, mask).scores, [3 / 4])
    # ties at the cut are shared: constant map -> K / (H W)
    np.testing.assert_allclose(relevance_rank(np.ones((1, 4, 4)), mask).scores, [4 / 16])


def test_registry_needs_ground_truth():
    with pytest.raises(MetricInputError, match="ground truth"):
        get_metric("pointing")(None, None, peak_map(1, 1))
    result = get_metric("energy_pointing")(None, None, peak_map(35, 35), ground_truth=BOX)
    assert result.summary() == {"energy_pointing": pytest.approx(np.array([1.0]))}


def test_scaled_tolerance_is_torchrays_15_px_at_224_px():
    from camscope.metrics.localization import scaled_tolerance

    assert scaled_tolerance(224) == 15.0
    assert scaled_tolerance(64) == pytest.approx(4.29, abs=0.01)
