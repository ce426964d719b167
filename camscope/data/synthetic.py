"""Synthetic images whose evidence is known to the pixel: one shape per image on a cluttered background.

Why: nothing can be downloaded here, and ImageNet has no per-pixel truth. Here the class is carried by
the object's *shape only*; colour, texture, position, rotation and area are drawn independently of the
class, and the clutter (strokes and dots) uses the same colour distribution as the objects, so a model
can only be right by looking at the object. Every image comes with its object mask and box, and, on
request, the counterfactual: the same scene with the object removed (the background that was drawn
under it, clutter included), so "remove the evidence" has an exact answer.

Rendering is vectorised over images with numpy (pixel-centre inside-tests on rotated coordinate grids,
clutter stamped by scatter), chunk by chunk. Image ``i`` of a seed depends only on ``(seed, i, size)``,
not on ``n``: ``generate(10, s)`` is the first ten images of ``generate(1000, s)``.

Default size 64: mini models are built with a total stride of 8 (or 8×8 patches), which gives an 8×8
CAM grid (the methods need at least 7×7 to localise) while a forward pass stays cheap enough to train on two CPU
cores in minutes; at 96 px every pass costs 2.25× more for no gain in what the task tests. At 64 px the
smallest object (6 % of the image, ~250 pixels, ~16 px across) is still clearly recognisable.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage

from camscope.core.errors import InputError

DEFAULT_SIZE = 64
# Fraction of the image covered by the object, drawn uniformly. The top is lowered where the widest shape
# (the crescent) would no longer fit inside the image: at 64 px the largest objects cover about 24 %.
COVERAGE_RANGE = (0.06, 0.26)
MIN_SIZE = 32

_CHUNK = 256  # images rendered at once: bounds memory, and fixes the random stream per image block
_STROKES = 6  # at most, per image
_DOTS = 12
_STROKE_SAMPLES = 64
_GRID = 4  # control points per side of the smooth background colour field
_NOISE = 0.06  # amplitude of the grayscale pixel noise over the whole image
_MIN_CONTRAST = 0.45  # RGB distance between the object colour and the background under its centre

ShapeTest = Callable[[np.ndarray, np.ndarray], np.ndarray]


# ---- shapes: inside-tests on unit coordinates (u, v), each shape roughly filling the unit disk ----------


def _disk(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 1.0


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r2 = u * u + v * v
    return (r2 <= 1.0) & (r2 >= 0.56**2)


def _regular_polygon(sides: int) -> ShapeTest:
    """Intersection of half-planes: circumradius 1."""
    angles = 2 * np.pi * np.arange(sides) / sides
    normals = [(np.float32(np.cos(a)), np.float32(np.sin(a))) for a in angles]
    apothem = np.float32(np.cos(np.pi / sides))

    def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        result = u * normals[0][0] + v * normals[0][1] <= apothem
        for cos_a, sin_a in normals[1:]:
            result &= u * cos_a + v * sin_a <= apothem
        return result

    return inside


def _star(points: int = 5, inner: float = 0.45) -> ShapeTest:
    """Fold the angle into half a spike, then one half-plane test against the spike's edge."""
    sector = 2 * np.pi / points
    edge_x, edge_y = inner * np.cos(sector / 2) - 1.0, inner * np.sin(sector / 2)  # outer -> inner vertex

    def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        rho = np.hypot(u, v)
        phi = np.mod(np.arctan2(v, u), sector)
        phi = np.minimum(phi, sector - phi)
        x, y = rho * np.cos(phi), rho * np.sin(phi)
        return edge_x * y - edge_y * (x - 1.0) >= 0.0

    return inside


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.3) & (av <= 0.9)) | ((av <= 0.3) & (au <= 0.9))


def _arrow(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    av = np.abs(v)
    shaft = (u >= -0.9) & (u <= 0.15) & (av <= 0.22)
    head = (u >= 0.1) & (av <= 0.62 * (0.9 - u) / 0.8)
    return shaft | head


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y = 1.2 * u, 0.15 - 1.2 * v
    return (x * x + y * y - 1.0) ** 3 - x * x * y**3 <= 0.0


def _crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u * u + v * v <= 1.0) & ((u - 0.5) ** 2 + v * v >= 0.78**2)


def _l_shape(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    in_box = (np.abs(u) <= 0.7) & (np.abs(v) <= 0.7)
    return in_box & ((u <= -0.2) | (v >= 0.2))


SHAPES: dict[str, ShapeTest] = {
    "circle": _disk,
    "square": _regular_polygon(4),
    "triangle": _regular_polygon(3),
    "star": _star(),
    "cross": _cross,
    "ring": _ring,
    "arrow": _arrow,
    "heart": _heart,
    "crescent": _crescent,
    "l_shape": _l_shape,
}
CLASS_NAMES: tuple[str, ...] = tuple(SHAPES)


@functools.cache
def _shape_stats() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area, centroid (u, v) and extent (max distance from the centroid) of each unit shape.

    Measured once on a fine grid. The area lets the generator pick the scale from a class-independent
    coverage; the centroid puts every shape's centre of mass at the drawn position; the extent keeps the
    object inside the image.
    """
    grid = np.linspace(-1.5, 1.5, 1201)
    u, v = np.meshgrid(grid, grid)
    cell = (grid[1] - grid[0]) ** 2
    areas, centroids, extents = [], [], []
    for test in SHAPES.values():
        inside = test(u, v)
        cu, cv = u[inside].mean(), v[inside].mean()
        areas.append(inside.sum() * cell)
        centroids.append((cu, cv))
        extents.append(np.sqrt(((u[inside] - cu) ** 2 + (v[inside] - cv) ** 2).max()))
    return np.array(areas), np.array(centroids), np.array(extents)


# ---- textures: a value t in [0, 1] per object pixel that mixes the object's two colours -----------------


class _TexturePixels(NamedTuple):
    """Flat arrays over the object pixels of the images that use one texture."""

    u: np.ndarray  # pixels, in the object's rotated frame
    v: np.ndarray
    period: np.ndarray  # the image's texture period in pixels
    phase: np.ndarray  # the image's texture phase in [0, 1)
    rnd: np.ndarray  # uniform random number per pixel


def _solid(px: _TexturePixels) -> np.ndarray:
    return np.zeros_like(px.u)


def _stripes(px: _TexturePixels) -> np.ndarray:
    return np.mod(px.u / px.period + px.phase, 1.0) < 0.5


def _checker(px: _TexturePixels) -> np.ndarray:
    return np.mod(np.floor(px.u / px.period + px.phase) + np.floor(px.v / px.period + px.phase), 2.0)


def _polka(px: _TexturePixels) -> np.ndarray:
    du, dv = np.mod(px.u / px.period + px.phase, 1.0) - 0.5, np.mod(px.v / px.period, 1.0) - 0.5
    return du * du + dv * dv < 0.09


def _speckle(px: _TexturePixels) -> np.ndarray:
    return px.rnd < 0.4


def _ramp(px: _TexturePixels) -> np.ndarray:
    return np.clip(0.5 + px.u / (4.0 * px.period), 0.0, 1.0)  # a gradient 8 periods (24-56 px) long


TEXTURES: tuple[Callable[[_TexturePixels], np.ndarray], ...] = (_solid, _stripes, _checker, _polka, _speckle, _ramp)


# ---- the public result -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticBatch:
    """Images with their ground truth.

    Boxes are pixel-edge coordinates ``x1 y1 x2 y2`` (x2, y2 exclusive), the tight box of the mask:
    ``mask[y1:y2, x1:x2]`` holds every object pixel. ``counterfactual`` (when requested) is the same scene
    without the object; it equals ``images`` wherever the mask is False.
    """

    images: np.ndarray  # uint8 (N, H, W, 3)
    labels: np.ndarray  # int64 (N,)
    masks: np.ndarray  # bool (N, H, W)
    boxes: np.ndarray  # int64 (N, 4)
    class_names: tuple[str, ...] = CLASS_NAMES
    counterfactual: np.ndarray | None = None  # uint8 (N, H, W, 3)

    def __len__(self) -> int:
        return len(self.labels)


def generate(
    n: int,
    seed: int,
    size: int = DEFAULT_SIZE,
    *,
    counterfactual: bool = False,
    background_pool: int | None = None,
    plain_objects: bool = False,
) -> SyntheticBatch:
    """Render ``n`` images of ``size``×``size`` deterministically from ``seed``.

    With ``counterfactual=True`` the batch also holds each scene without its object. With
    ``background_pool=K`` every background (colour field, strokes, dots) is one of K fixed backgrounds
    shared by all seeds, so the background no longer identifies the image — what two crops of one image
    share beyond the pool is the object (a label-free setting for self-supervised pre-training; the
    object colours are redrawn to stand out from the pooled background). ``plain_objects=True`` paints
    every object in its first colour only (no texture): the texture, drawn independently of the class,
    would otherwise identify the instance as well as its shape does (the other label-free pre-training
    setting; every other draw is unchanged, so the scenes are the same but for the texture). Raises
    :class:`~camscope.core.errors.InputError` for a negative ``n`` or ``seed``, a ``size`` below ``MIN_SIZE``
    or a pool outside 1…``_CHUNK``.
    """
    _check_arguments(n, seed, size, background_pool)
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), bool)
    labels = np.empty(n, np.int64)
    removed = np.empty_like(images) if counterfactual else None
    for rows, params in _chunk_scenes(n, seed, size, background_pool, plain_objects):
        params = params.head(rows.stop - rows.start)
        labels[rows] = params.labels
        images[rows], masks[rows], background = _render(params, size, counterfactual)
        if removed is not None and background is not None:
            removed[rows] = background
    return SyntheticBatch(images, labels, masks, boxes_from_masks(masks), CLASS_NAMES, removed)


def _chunk_scenes(
    n: int, seed: int, size: int, background_pool: int | None = None, plain_objects: bool = False
) -> Iterator[tuple[slice, _Scenes]]:
    """Each chunk's rows and its whole chunk of drawn scenes: the one place a seed becomes scenes.

    Whole chunks, so that a scene depends only on its seed and index, never on ``n``.
    """
    for start in range(0, n, _CHUNK):
        rng = np.random.default_rng([seed, start // _CHUNK])
        params = _draw_scenes(rng, size)
        if background_pool is not None:
            params = _pooled_backgrounds(params, rng, background_pool, size)
        yield slice(start, min(start + _CHUNK, n)), _plain(params) if plain_objects else params


def _plain(params: _Scenes) -> _Scenes:
    """The same scenes with every object painted in its first colour (``TEXTURES[0]`` is solid)."""
    params.texture = np.zeros_like(params.texture)
    return params


def generate_twins(
    n: int, seed: int, size: int = DEFAULT_SIZE, *, same_appearance: bool = True, plain_objects: bool = False
) -> tuple[SyntheticBatch, SyntheticBatch]:
    """``generate(n, seed, size, plain_objects=...)`` and a twin of every scene: the same object, redrawn.

    Why: the *generator-paired* pre-training method. Two crops of one scene share its background clutter
    and the object's place in it, so instance discrimination can succeed without looking at the object;
    a twin shows the same object (class, size, angle and, with ``same_appearance``, its colours and
    texture) at a new position on a new background with new noise, so what a pair shares is the object
    alone. This uses the generator's knowledge of which pixels are the object — it is not label-free in
    spirit, and models pre-trained this way are named as such. Without ``same_appearance`` the colours and
    texture are redrawn too (they then stand out from the twin's own background), leaving the shape's
    pose and size as all a pair shares: one step closer to class supervision.
    """
    _check_arguments(n, seed, size)
    images = np.empty((2, n, size, size, 3), np.uint8)
    masks = np.empty((2, n, size, size), bool)
    labels = np.empty(n, np.int64)
    for rows, params in _chunk_scenes(n, seed, size, plain_objects=plain_objects):
        twin = _twin_scenes(
            params, np.random.default_rng([seed, rows.start // _CHUNK, _TWIN_STREAM]), size, same_appearance
        )
        if plain_objects:
            twin = _plain(twin)
        labels[rows] = params.labels[: rows.stop - rows.start]
        for k, scenes in enumerate((params, twin)):
            images[k, rows], masks[k, rows], _ = _render(scenes.head(rows.stop - rows.start), size, False)
    first, second = (
        SyntheticBatch(images[k], labels.copy(), masks[k], boxes_from_masks(masks[k]), CLASS_NAMES) for k in range(2)
    )
    return first, second


def scene_factors(
    n: int, seed: int, size: int = DEFAULT_SIZE, *, background_pool: int | None = None
) -> dict[str, np.ndarray]:
    """The per-image draws behind ``generate(n, seed, size, background_pool=...)``, without rendering.

    Why: the class is drawn independently of every other factor, so a linear probe for a factor that is
    not the class (``texture``: index into ``TEXTURES``; ``scale`` in pixels per shape unit; ``angle``;
    with a pool, ``background``: which of the pooled backgrounds) says what a representation encodes
    besides the shape — e.g. self-supervised features that identify an instance by its texture or by its
    pooled background (``camscope_lab/experiments/mini_probe_factors.py``). ``label`` equals the batch's labels.
    """
    _check_arguments(n, seed, size, background_pool)
    names = ("labels", "texture", "scale", "angle")
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    if background_pool is not None:
        parts["background"] = []
    for start in range(0, n, _CHUNK):
        rng = np.random.default_rng([seed, start // _CHUNK])
        params = _draw_scenes(rng, size)
        keep = min(_CHUNK, n - start)
        if background_pool is not None:  # the same draw, from the same stream, as _pooled_backgrounds
            parts["background"].append(_pool_picks(rng, background_pool, len(params.labels))[:keep])
        params = params.head(keep)
        for name in names:
            parts[name].append(getattr(params, name))
    factors = {name: np.concatenate(values) if values else np.empty(0) for name, values in parts.items()}
    factors["label"] = factors.pop("labels")
    return factors


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """Tight ``x1 y1 x2 y2`` boxes (exclusive ends) of boolean masks (N, H, W); an empty mask gives zeros."""
    rows, cols = np.asarray(masks.any(axis=2)), np.asarray(masks.any(axis=1))
    height, width = masks.shape[1:]
    boxes = np.stack(
        [
            cols.argmax(axis=1),
            rows.argmax(axis=1),
            width - cols[:, ::-1].argmax(axis=1),
            height - rows[:, ::-1].argmax(axis=1),
        ],
        axis=1,
    ).astype(np.int64)
    boxes[~rows.any(axis=1)] = 0
    return boxes


def _check_arguments(n: int, seed: int, size: int, background_pool: int | None = None) -> None:
    if int(n) != n or n < 0:
        raise InputError(f"number of synthetic images must be a non-negative integer, got {n!r}")
    if int(seed) != seed or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if int(size) != size or size < MIN_SIZE:
        raise InputError(f"synthetic image size must be an integer >= {MIN_SIZE}, got {size!r}")
    if background_pool is not None and (int(background_pool) != background_pool or not 1 <= background_pool <= _CHUNK):
        raise InputError(f"background pool must hold 1 to {_CHUNK} backgrounds, got {background_pool!r}")


# ---- scene parameters: everything random is drawn here, for a whole chunk, before any rendering ----------


@dataclass
class _Scenes:
    labels: np.ndarray  # (n,)
    scale: np.ndarray  # (n,) pixels per unit of shape coordinates
    centre: np.ndarray  # (n, 2) x, y in pixels
    angle: np.ndarray  # (n,)
    colours: np.ndarray  # (n, 2, 3) the object's two colours
    texture: np.ndarray  # (n,) index into TEXTURES
    period: np.ndarray  # (n,) texture period in pixels
    phase: np.ndarray  # (n,)
    field: np.ndarray  # (n, _GRID, _GRID, 3) background colour control points
    strokes: np.ndarray  # (n, _STROKES, 3, 2) quadratic Bezier control points
    stroke_stamp: np.ndarray  # (n, _STROKES) stamp size; 0 = no stroke
    stroke_colour: np.ndarray  # (n, _STROKES, 3)
    dots: np.ndarray  # (n, _DOTS, 2)
    dot_stamp: np.ndarray  # (n, _DOTS) stamp size; 0 = no dot
    dot_colour: np.ndarray  # (n, _DOTS, 3)
    noise: np.ndarray  # (n, S, S)
    speckle: np.ndarray  # (n, S, S)

    def head(self, count: int) -> _Scenes:
        return _Scenes(**{f.name: getattr(self, f.name)[:count] for f in fields(self)})


def _draw_scenes(rng: np.random.Generator, size: int) -> _Scenes:
    """Draw a full chunk; the class is drawn independently of everything else."""
    n = _CHUNK
    labels = rng.integers(0, len(CLASS_NAMES), n)
    scale, centre = _draw_geometry(rng, labels, size)
    field = _colours(rng, (n, _GRID, _GRID)) * 0.6 + _colours(rng, (n, 1, 1)) * 0.4
    under_centre = _field_at(field, centre, size)
    return _Scenes(
        labels=labels,
        scale=scale,
        centre=centre,
        angle=rng.uniform(0, 2 * np.pi, n),
        colours=_object_colours(rng, under_centre),
        texture=rng.integers(0, len(TEXTURES), n),
        period=rng.uniform(3.0, 7.0, n),
        phase=rng.uniform(0.0, 1.0, n),
        field=field,
        strokes=rng.uniform(-0.1 * size, 1.1 * size, (n, _STROKES, 3, 2)),
        stroke_stamp=_stamp_sizes(rng, (n, _STROKES), present=rng.integers(2, _STROKES + 1, n), sizes=(1, 5)),
        stroke_colour=_colours(rng, (n, _STROKES)),
        dots=rng.uniform(0, size, (n, _DOTS, 2)),
        dot_stamp=_stamp_sizes(rng, (n, _DOTS), present=rng.integers(4, _DOTS + 1, n), sizes=(5, 9, 13)),
        dot_colour=_colours(rng, (n, _DOTS)),
        noise=rng.uniform(-_NOISE, _NOISE, (n, size, size)).astype(np.float32),
        speckle=rng.random((n, size, size), dtype=np.float32),
    )


_POOL_SEED = 424_242  # the one fixed pool of backgrounds of ``background_pool``
_BACKGROUND_FIELDS = ("field", "strokes", "stroke_stamp", "stroke_colour", "dots", "dot_stamp", "dot_colour")


_TWIN_STREAM = 1  # extra key of the random stream that draws each chunk's twins


def _twin_scenes(p: _Scenes, rng: np.random.Generator, size: int, same_appearance: bool) -> _Scenes:
    """The objects of ``p`` (class, scale, angle; colours and texture if ``same_appearance``) in new scenes."""
    fresh = _draw_scenes(rng, size)
    pixels = p.scale**2 * _shape_stats()[0][p.labels]
    fresh.labels, fresh.scale, fresh.angle = p.labels, p.scale, p.angle
    fresh.centre = _centres(rng, _margins(pixels), size)
    if same_appearance:
        fresh.colours, fresh.texture, fresh.period, fresh.phase = p.colours, p.texture, p.period, p.phase
    else:
        fresh.colours = _object_colours(rng, _field_at(fresh.field, fresh.centre, size))
    return fresh


def _pool_picks(rng: np.random.Generator, pool: int, n: int) -> np.ndarray:
    """Which pooled background each of ``n`` scenes gets (one definition: rendering and factors agree)."""
    return rng.integers(0, pool, n)


def _pooled_backgrounds(p: _Scenes, rng: np.random.Generator, pool: int, size: int) -> _Scenes:
    """Scenes ``p`` with each background replaced by one of the first ``pool`` fixed backgrounds."""
    shared = _draw_scenes(np.random.default_rng([_POOL_SEED, size]), size)
    pick = _pool_picks(rng, pool, len(p.labels))
    replaced = {name: getattr(shared, name)[pick] for name in _BACKGROUND_FIELDS}
    under_centre = _field_at(replaced["field"], p.centre, size)
    kept = {f.name: getattr(p, f.name) for f in fields(p) if f.name not in replaced}
    kept["colours"] = _object_colours(rng, under_centre)
    return _Scenes(**kept, **replaced)


def _draw_geometry(rng: np.random.Generator, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale from a class-independent coverage; centre from a class-independent margin.

    The margin is the largest extent any class would have at that coverage, so where an object may sit
    says nothing about its class.
    """
    areas, _, extents = _shape_stats()
    low, high = COVERAGE_RANGE
    high = min(high, ((size - 1) / 2 / size) ** 2 * (areas / extents**2).min())  # every class fits
    coverage = rng.uniform(low, high, len(labels))
    pixels = coverage * size * size
    scale = np.sqrt(pixels / areas[labels])
    return scale, _centres(rng, _margins(pixels), size)


def _margins(pixels: np.ndarray) -> np.ndarray:
    """Distance from the border each object keeps: the largest extent any class has at that many pixels."""
    areas, _, extents = _shape_stats()
    return (np.sqrt(pixels[:, None] / areas[None, :]) * extents).max(axis=1)


def _centres(rng: np.random.Generator, margin: np.ndarray, size: int) -> np.ndarray:
    return rng.uniform(margin[:, None], size - 1 - margin[:, None], (len(margin), 2))


def _colours(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """The one colour distribution of objects and clutter alike (HSV: any hue, mid-to-full sat/value)."""
    hsv = np.stack([rng.uniform(0, 1, shape), rng.uniform(0.25, 1.0, shape), rng.uniform(0.25, 1.0, shape)], axis=-1)
    return _hsv_to_rgb(hsv)


def _object_colours(rng: np.random.Generator, under_centre: np.ndarray) -> np.ndarray:
    """Main colour (redrawn until it stands out from the background) and a second one for its texture."""
    main = _colours(rng, (len(under_centre),))
    for _ in range(50):
        dull = np.linalg.norm(main - under_centre, axis=1) < _MIN_CONTRAST
        if not dull.any():
            break
        main[dull] = _colours(rng, (int(dull.sum()),))
    towards = rng.integers(0, 2, (len(main), 1)).astype(float)  # mix towards black or white
    second = main + (towards - main) * rng.uniform(0.35, 0.6, (len(main), 1))
    return np.stack([main, second], axis=1)


def _stamp_sizes(
    rng: np.random.Generator, shape: tuple[int, int], present: np.ndarray, sizes: tuple[int, ...]
) -> np.ndarray:
    stamps = np.asarray(sizes)[rng.integers(0, len(sizes), shape)]
    stamps[np.arange(shape[1])[None, :] >= present[:, None]] = 0
    return stamps


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0] * 6.0, hsv[..., 1], hsv[..., 2]
    k = np.mod(np.array([5.0, 3.0, 1.0]) + h[..., None], 6.0)
    return v[..., None] - (v * s)[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _field_at(field: np.ndarray, points: np.ndarray, size: int) -> np.ndarray:
    """Background colour (n, 3) of each scene's colour ``field`` at its point (x, y): what an object must stand
    out from (its colour is drawn against the field under its centre)."""
    rows, cols = _hat_weights(points[:, 1], size), _hat_weights(points[:, 0], size)
    return np.einsum("ni,nijc,nj->nc", rows, field, cols)


def _hat_weights(positions: np.ndarray, size: int) -> np.ndarray:
    """Linear-interpolation weights (len(positions), _GRID) of control points spread over the image."""
    knots = np.linspace(0, size - 1, _GRID)
    spacing = knots[1] - knots[0]
    return np.clip(1.0 - np.abs(positions[:, None] - knots[None, :]) / spacing, 0.0, 1.0)


# ---- rendering: deterministic given the parameters -----------------------------------------------------


def _render(p: _Scenes, size: int, counterfactual: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Return (image, mask, counterfactual or None) for a chunk; images quantised to uint8."""
    background = _background(p, size)
    u, v = _object_frame(p, size)
    mask = _object_mask(p.labels, p.scale, u, v)
    noise = p.noise[..., None]
    removed = _to_uint8(background + noise) if counterfactual else None  # same float ops off the mask
    image = background  # painted over in place: the counterfactual is already taken
    image[mask] = _object_pixels(p, u, v, mask)
    image += noise
    return _to_uint8(image), mask, removed


def _background(p: _Scenes, size: int) -> np.ndarray:
    """Smooth colour field (bilinear from the control points, as one matrix product) plus the clutter."""
    n = len(p.labels)
    field = p.field.astype(np.float32).reshape(n, _GRID * _GRID, 3)
    image = np.matmul(_field_basis(size), field).reshape(n, size, size, 3)
    _stamp(image, _bezier_points(p.strokes), p.stroke_stamp, p.stroke_colour)
    _stamp(image, p.dots, p.dot_stamp, p.dot_colour)
    return image


@functools.cache
def _field_basis(size: int) -> np.ndarray:
    """(S*S, _GRID*_GRID) bilinear weights of every pixel on every control point."""
    weights = _hat_weights(np.arange(size, dtype=float), size)
    return np.einsum("yi,xj->yxij", weights, weights).reshape(size * size, -1).astype(np.float32)


def _bezier_points(control: np.ndarray) -> np.ndarray:
    """Sample quadratic Bezier strokes (n, K, 3, 2) at _STROKE_SAMPLES points each -> (n, K, T, 2)."""
    t = np.linspace(0.0, 1.0, _STROKE_SAMPLES)[None, None, :, None]
    p0, p1, p2 = (control[:, :, i, None, :] for i in range(3))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


# Pixel offsets sorted by distance: the first 1 / 5 / 9 / 13 make a point, a plus, a 3x3 square, a disc.
_OFFSETS = np.array(
    [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1), (2, 0), (-2, 0), (0, 2), (0, -2)],
    dtype=np.int32,
)


def _stamp(image: np.ndarray, points: np.ndarray, stamp: np.ndarray, colour: np.ndarray) -> None:
    """Paint marks into ``image`` (n, S, S, 3) in place.

    points: (n, K, ..., 2) x, y; stamp: (n, K) how many of _OFFSETS each mark uses (0 = absent);
    colour: (n, K, 3). Later marks paint over earlier ones.
    """
    n, size, marks = image.shape[0], image.shape[1], stamp.shape[1]
    offsets = _OFFSETS[: int(stamp.max(initial=0))]
    centre = np.rint(points.reshape(n, marks, -1, 2)).astype(np.int32)
    x = centre[..., 0, None] + offsets[:, 0]  # (n, K, P, O)
    y = centre[..., 1, None] + offsets[:, 1]
    keep = (x >= 0) & (x < size) & (y >= 0) & (y < size)
    keep &= np.arange(len(offsets), dtype=np.int32) < stamp[:, :, None, None]
    chosen = np.flatnonzero(keep)
    mark = chosen // (x.shape[2] * x.shape[3])  # flat (image, mark) index
    pixel = (mark // marks * size + y.ravel()[chosen]) * size + x.ravel()[chosen]
    image.reshape(-1, 3)[pixel] = colour.reshape(-1, 3)[mark]


def _object_frame(p: _Scenes, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in each object's rotated frame, in pixels, centred on the object: (n, S, S) each."""
    coords = np.arange(size, dtype=np.float32)
    dx = coords[None, None, :] - p.centre[:, 0, None, None].astype(np.float32)
    dy = coords[None, :, None] - p.centre[:, 1, None, None].astype(np.float32)
    cos, sin = (f(p.angle).astype(np.float32)[:, None, None] for f in (np.cos, np.sin))
    return dx * cos + dy * sin, dy * cos - dx * sin


def _object_mask(labels: np.ndarray, scale: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test of each image's shape, class by class, in unit shape coordinates."""
    _, centroids, _ = _shape_stats()
    mask = np.empty(u.shape, bool)
    for label, test in enumerate(SHAPES.values()):
        rows = np.flatnonzero(labels == label)
        if rows.size:
            inv = (1.0 / scale[rows]).astype(np.float32)[:, None, None]
            cu, cv = centroids[label].astype(np.float32)
            mask[rows] = test(u[rows] * inv + cu, v[rows] * inv + cv)
    return _largest_piece(mask)


_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1] = True  # 8-connectivity within an image, none across images


def _largest_piece(masks: np.ndarray) -> np.ndarray:
    """Drop the stray pixels that sampling leaves near sharp tips (crescent, star), so each mask is one piece."""
    labels, count = ndimage.label(masks, structure=_IN_PLANE)
    if count <= len(masks):
        return masks
    sizes = np.bincount(labels.ravel())
    owner = np.zeros(count + 1, np.int64)
    pixels = np.flatnonzero(labels)
    owner[labels.ravel()[pixels]] = pixels // masks[0].size
    biggest = np.zeros(len(masks), np.int64)
    np.maximum.at(biggest, owner[1:], sizes[1:])
    keep = sizes == biggest[owner]
    keep[0] = False
    return keep[labels]


def _object_pixels(p: _Scenes, u: np.ndarray, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The textured colour of every object pixel, (mask.sum(), 3), in the order of ``image[mask]``."""
    owner = np.nonzero(mask)[0]
    period, phase = p.period.astype(np.float32)[owner], p.phase.astype(np.float32)[owner]
    every = _TexturePixels(u[mask], v[mask], period, phase, p.speckle[mask])
    texture = p.texture[owner]
    mix = np.empty(len(owner), np.float32)
    for index, fn in enumerate(TEXTURES):
        pixels = np.flatnonzero(texture == index)
        if pixels.size:
            mix[pixels] = fn(_TexturePixels(*(field[pixels] for field in every)))
    first, second = p.colours[owner, 0].astype(np.float32), p.colours[owner, 1].astype(np.float32)
    return first + mix[:, None] * (second - first)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Quantise [0, 1] floats (consumes ``image``, a temporary)."""
    image *= 255.0
    image += 0.5
    return np.clip(image, 0, 255, out=image).astype(np.uint8)


# Per-channel mean/std of generated images (measured on 8,192 images of two seeds: 0.437 ± 0.187 in
# every channel; the generator draws colours symmetrically, so one value serves all three).
SYNTHETIC_MEAN: tuple[float, float, float] = (0.437, 0.437, 0.437)
SYNTHETIC_STD: tuple[float, float, float] = (0.187, 0.187, 0.187)


def to_input(
    images: np.ndarray,
    mean: tuple[float, ...] = SYNTHETIC_MEAN,
    std: tuple[float, ...] = SYNTHETIC_STD,
) -> torch.Tensor:
    """uint8 (N, H, W, 3) → normalised float (N, 3, H, W): the same numbers as a spec's ``Preprocess``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean_t) / std_t
