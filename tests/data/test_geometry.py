"""Maps laid back onto the original image through the model's resize + centre crop (camscope.data.geometry)."""

from __future__ import annotations

import numpy as np
import pytest

from camscope.core.errors import InputError
from camscope.data.geometry import input_region, map_to_original
from camscope.metrics import transform_mask


def test_a_hot_block_lands_where_the_crop_put_it() -> None:
    # 100×200 → shorter side 64 → 64×128 → centre crop 64×64 keeps resized columns 32..95,
    # i.e. original columns 50..149. The left half of the input (columns 0..31) is original 50..99.
    cam = np.zeros((64, 64), np.float32)
    cam[:, :32] = 1.0
    mapped, inside = map_to_original(cam, 100, 200, 64, (64, 64))
    assert mapped.shape == inside.shape == (100, 200)
    columns = np.flatnonzero(inside.all(axis=0))
    assert columns[0] == 50 and columns[-1] == 149 and inside.all(axis=0).sum() == 100
    assert (mapped[:, 50:99] > 0.99).all() and (mapped[:, 101:150] < 0.01).all()
    assert (mapped[:, :50] == 0).all() and (mapped[:, 150:] == 0).all()  # cut away: the model never saw it
    assert input_region(100, 200, 64, (64, 64)) == (50.0, 0.0, 150.0, 100.0)


def test_a_hot_pixel_of_a_squash_resize_lands_on_its_original_pixels() -> None:
    # exact resize (h, w) = (8, 8), no crop: input pixel (2, 5) covers original rows 8..11, columns 20..23
    cam = np.zeros((8, 8), np.float32)
    cam[2, 5] = 1.0
    mapped, inside = map_to_original(cam, 32, 32, (8, 8), None)
    assert inside.all()
    peak = np.unravel_index(np.argmax(mapped), mapped.shape)
    assert 8 <= peak[0] <= 11 and 20 <= peak[1] <= 23
    assert mapped[:, :16].max() == 0 and mapped[16:].max() == 0


def test_identity_geometry_returns_the_map_unchanged() -> None:
    cam = np.random.default_rng(0).random((30, 40)).astype(np.float32)
    mapped, inside = map_to_original(cam, 30, 40, None, None)
    assert inside.all() and np.array_equal(mapped, cam)


@pytest.mark.parametrize(("size", "resize", "crop"), [((150, 200), 256, (224, 224)), ((300, 120), 64, (64, 64))])
def test_mask_to_input_and_back_is_the_mask_inside_the_crop(size, resize, crop) -> None:
    height, width = size
    yy, xx = np.mgrid[:height, :width]
    mask = (yy - height / 2) ** 2 + (xx - width / 2.3) ** 2 < (min(size) / 4) ** 2
    forward = transform_mask(mask, resize, crop).astype(np.float32)
    back, inside = map_to_original(forward, height, width, resize, crop)
    expected = mask & inside
    got = back > 0.5
    iou = (got & expected).sum() / (got | expected).sum()
    assert iou > 0.95


def test_a_map_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(InputError, match="does not fit"):
        map_to_original(np.zeros((10, 10)), 100, 100, 64, (64, 64))
