"""Where the model's input lies in the original image: torchvision's ``Resize`` + ``CenterCrop``, both ways.

Why here: ground truth given on the original image must be moved onto the model's input (the metrics),
and a map computed on the model's input must be moved back onto the original image (overlays people can
read at the photo's own resolution). Both directions use these definitions, so they cannot drift apart.

Conventions: pixel ``(row r, column c)`` covers ``[c, c+1) × [r, r+1)``; resizing maps pixel centres
linearly (``x' = x · w'/w``, the half-pixel convention of PIL and torchvision); ``resize`` is an int
(shorter side, aspect ratio kept) or an exact ``(h, w)``; ``crop`` is an int or ``(h, w)``; either may be
None (no resize / no crop).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from camscope.core.errors import InputError

Size = int | Sequence[int] | None


def resized_size(height: int, width: int, resize: Size) -> tuple[int, int]:
    """Output (h, w) of torchvision's ``Resize(resize)``."""
    if resize is None:
        return height, width
    if isinstance(resize, int):
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = resize, int(resize * long / short)
        return (new_long, new_short) if width <= height else (new_short, new_long)
    h, w = resize
    return int(h), int(w)


def crop_offsets(height: int, width: int, crop: Size) -> tuple[int, int, int, int]:
    """(top, left, crop_h, crop_w) of torchvision's ``CenterCrop`` (negative offsets: it pads)."""
    if crop is None:
        return 0, 0, height, width
    ch, cw = (crop, crop) if isinstance(crop, int) else (int(crop[0]), int(crop[1]))

    def offset(size: int, c: int) -> int:
        return -((c - size) // 2) if c > size else round((size - c) / 2.0)

    return offset(height, ch), offset(width, cw), ch, cw


def input_region(height: int, width: int, resize: Size, crop: Size) -> tuple[float, float, float, float]:
    """The model's input as a box ``(x0, y0, x1, y1)`` in the original image's pixel coordinates.

    Clipped to the image: when the crop pads, the padding is not part of the original.
    """
    rh, rw = resized_size(height, width, resize)
    top, left, ch, cw = crop_offsets(rh, rw, crop)
    sx, sy = width / rw, height / rh
    return (
        max(0.0, left * sx),
        max(0.0, top * sy),
        min(float(width), (left + cw) * sx),
        min(float(height), (top + ch) * sy),
    )


def boxes_to_original(boxes: np.ndarray, height: int, width: int, resize: Size, crop: Size) -> np.ndarray:
    """Boxes ``(x1, y1, x2, y2)`` in the model input's pixels, in the original ``height × width`` image's pixels:
    back through the crop, then the resize (the inverse of ``metrics.groundtruth.transform_boxes``, unclipped)."""
    rh, rw = resized_size(height, width, resize)
    top, left, _, _ = crop_offsets(rh, rw, crop)
    shifted = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) + np.array([left, top, left, top])
    moved: np.ndarray = shifted * np.array([width / rw, height / rh] * 2)
    return moved


def map_to_original(
    cam: np.ndarray, height: int, width: int, resize: Size, crop: Size
) -> tuple[np.ndarray, np.ndarray]:
    """A map on the model's input, laid back onto the original ``height × width`` image.

    Each original pixel centre is carried through the resize and the crop to a point of the input, where
    the map is sampled bilinearly. Returns ``(map (H, W) float32, inside (H, W) bool)``; ``inside`` is
    False where the crop cut the image away (the map is 0 there: the model never saw those pixels).
    """
    values = np.asarray(cam, dtype=np.float32)
    rh, rw = resized_size(height, width, resize)
    top, left, ch, cw = crop_offsets(rh, rw, crop)
    if values.shape != (ch, cw):
        raise InputError(f"a map of shape {values.shape} does not fit the model's {ch}×{cw} input")
    # pixel centres of the original, in input coordinates (continuous)
    ys = (np.arange(height) + 0.5) * (rh / height) - top
    xs = (np.arange(width) + 0.5) * (rw / width) - left
    inside = ((ys >= 0) & (ys < ch))[:, None] & ((xs >= 0) & (xs < cw))[None, :]
    columns = _linear(values, ys - 0.5, axis=0)  # (height, cw): small
    mapped = np.empty((height, width), dtype=np.float32)
    step = max(1, (1 << 20) // max(1, width))  # rows at a time: a large image's temporaries stay small
    for start in range(0, height, step):
        rows = slice(start, start + step)
        mapped[rows] = np.where(inside[rows], _linear(columns[rows], xs - 0.5, axis=1), 0.0)
    return mapped, inside


def _linear(values: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``values`` along ``axis`` at index coordinates ``coords`` (edge-clamped)."""
    n = values.shape[axis]
    c = np.clip(coords, 0.0, n - 1.0)
    i0 = np.floor(c).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (c - i0).astype(np.float32)
    shape = [1, 1]
    shape[axis] = -1
    w = w.reshape(shape)
    out: np.ndarray = np.take(values, i0, axis=axis) * (1.0 - w) + np.take(values, i1, axis=axis) * w
    return out
