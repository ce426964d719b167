"""Mosaics for the Focus metric: 2×2 tiles of synthetic scenes, two of them of the target class.

Focus (Arias-Duart et al., FUZZ-IEEE 2022) asks how much of a map falls on the tiles of the class it
explains. Each mosaic here is ``size``×``size`` — the input size of the model it is made for, so it
goes through the same preprocessing as any scene — built from four ``size/2`` scenes of
:func:`camscope.data.synthetic.generate`: two of the target class, two of other classes, in a random
order. Its label is the target class and its mask is the two target tiles (whole tiles: the metric's
ground truth), so a sweep scores Focus as it scores any localization metric.

Mosaic ``i`` of a seed depends only on ``(seed, i, size)``: its tiles come from its own block of
``TILE_POOL`` scenes, and its arrangement from its own random stream.
"""

from __future__ import annotations

import numpy as np

from camscope.core.errors import InputError
from camscope.data.synthetic import CLASS_NAMES, MIN_SIZE, SyntheticBatch, boxes_from_masks, generate

TILE_POOL = len(CLASS_NAMES) + 6  # scenes per mosaic to choose from: more than the classes, so a class repeats
QUADRANTS = ((0, 0), (0, 1), (1, 0), (1, 1))  # Quantus's order: top-left, top-right, bottom-left, bottom-right


def generate_mosaics(n: int, seed: int, size: int = 2 * MIN_SIZE) -> SyntheticBatch:
    """``n`` mosaics of ``size``×``size`` (even, at least ``2·MIN_SIZE``): labels are the target classes,
    masks the target tiles; see the module doc."""
    if int(size) != size or size < 2 * MIN_SIZE or size % 2:
        raise InputError(
            f"mosaic size must be an even integer >= {2 * MIN_SIZE} (tiles of >= {MIN_SIZE}), got {size!r}"
        )
    if int(n) != n or n < 0:
        raise InputError(f"number of mosaics must be a non-negative integer, got {n!r}")
    half = size // 2
    tiles = generate(n * TILE_POOL, seed, half)
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size), bool)
    labels = np.empty(n, np.int64)
    for i in range(n):
        pool = np.arange(i * TILE_POOL, (i + 1) * TILE_POOL)
        rng = np.random.default_rng([seed, i, size])
        counts = np.bincount(tiles.labels[pool], minlength=len(CLASS_NAMES))
        target = int(rng.choice(np.flatnonzero(counts >= 2)))
        same = rng.choice(pool[tiles.labels[pool] == target], 2, replace=False)
        other = rng.choice(pool[tiles.labels[pool] != target], 2, replace=False)
        picks = np.concatenate([same, other])[rng.permutation(4)]
        for (row, col), tile in zip(QUADRANTS, picks):
            block = (slice(row * half, (row + 1) * half), slice(col * half, (col + 1) * half))
            images[i][block] = tiles.images[tile]
            masks[i][block] = tiles.labels[tile] == target
        labels[i] = target
    return SyntheticBatch(images, labels, masks, boxes_from_masks(masks), CLASS_NAMES)


def quadrant_flags(masks: np.ndarray) -> np.ndarray:
    """Which tiles of each mosaic are target tiles, (N, 4) in Quantus's order (its Focus ``custom_batch``)."""
    h, w = masks.shape[1:]
    half_h, half_w = h // 2, w // 2
    return np.stack(
        [masks[:, r * half_h : (r + 1) * half_h, c * half_w : (c + 1) * half_w].all(axis=(1, 2)) for r, c in QUADRANTS],
        axis=1,
    ).astype(np.int64)
