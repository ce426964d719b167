"""Pictures of explanations: heat-map overlays, image × method grids, per-head attention grids,
deletion/insertion curves.

Headless by construction: figures are built on matplotlib's Agg canvas directly (no pyplot, no global
figure registry, no display needed), so the CLI, the report and the tests run on servers and in CI.
Colour maps come from matplotlib; OpenCV is needed only for pytorch-grad-cam's own drawings
(:func:`show_cam_on_image` with an OpenCV colour map, :func:`show_factorization_on_image`), drawn pixel for pixel.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from camscope.core.errors import MetricInputError, UnknownNameError
from camscope.data.images import ImageLike, as_rgb_array

Curve = np.ndarray | Sequence[float] | tuple[np.ndarray | Sequence[float], np.ndarray | Sequence[float]]


def overlay(image: ImageLike, cam: np.ndarray, alpha: float = 0.5, colormap: str = "jet") -> np.ndarray:
    """Blend a heat map over an image: ``(1 - alpha) * image + alpha * colormap(cam)`` as uint8 (H, W, 3).

    ``cam`` is a float (h, w) map in [0, 1] (values outside are clipped); it is resized bilinearly to the
    image when the sizes differ, so a 7×7 CAM can be laid over its 224×224 input directly.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    pixels = as_rgb_array(image)
    values = resize_map(cam, pixels.shape[:2])
    lut = _lookup_table(colormap)
    out = np.empty_like(pixels)
    for rows in _row_blocks(pixels.shape):  # a block at a time: a large image's floats never exist at once
        heat = lut[_lut_index(values[rows], len(lut))].astype(np.float32)
        out[rows] = np.rint((1.0 - alpha) * pixels[rows].astype(np.float32) + alpha * heat)
    return out


#: pixels processed at once when drawing: bounds the float temporaries of a large overlay (~40 MB)
_BLOCK_PIXELS = 1 << 20


def _row_blocks(shape: tuple[int, ...]) -> list[slice]:
    step = max(1, _BLOCK_PIXELS // max(1, shape[1]))
    return [slice(start, start + step) for start in range(0, shape[0], step)]


def mark_outside(picture: ImageLike, inside: np.ndarray, dim: float = 0.35) -> np.ndarray:
    """Dim the pixels outside ``inside`` (bool (H, W)) and outline the region, so a cropped-away border
    reads as "the model never saw this" rather than as a cold, unimportant area."""
    pixels = as_rgb_array(picture).copy()
    region = np.asarray(inside, dtype=bool)
    if region.shape != pixels.shape[:2]:
        raise MetricInputError(f"region of shape {region.shape} for an image of shape {pixels.shape[:2]}")
    if region.all():
        return pixels
    for rows in _row_blocks(pixels.shape):
        block, outside = pixels[rows], ~region[rows]
        if outside.any():
            grey = block.mean(axis=2, keepdims=True)
            block[outside] = np.rint(dim * grey[outside]).astype(np.uint8)
    return draw_contour(pixels, region, colour=(255, 255, 255))


def draw_contour(picture: ImageLike, mask: np.ndarray, colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Draw the outline of a bool (H, W) mask (e.g. an object's true mask) over a picture, about 1/150 of
    the image side thick (at least 1 px), so it stays visible on small and large images alike."""
    from scipy import ndimage

    pixels = as_rgb_array(picture).copy()
    region = np.asarray(mask, dtype=bool)
    if region.shape != pixels.shape[:2]:
        raise MetricInputError(f"mask of shape {region.shape} for an image of shape {pixels.shape[:2]}")
    width = max(1, round(max(region.shape) / 150))
    edge = region & ~ndimage.binary_erosion(region, iterations=width, border_value=1)
    pixels[edge] = colour
    return pixels


def draw_boxes(picture: ImageLike, boxes: np.ndarray, colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Draw the outline of each box (x1, y1, x2, y2, in the picture's pixels; e.g. the detections a map
    explains) as :func:`draw_contour` draws a mask's: the pixels whose centres lie in the box."""
    pixels = as_rgb_array(picture)
    height, width = pixels.shape[:2]
    rows, columns = np.arange(height) + 0.5, np.arange(width) + 0.5
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        inside = ((rows >= y1) & (rows < y2))[:, None] & ((columns >= x1) & (columns < x2))[None, :]
        if inside.any():
            pixels = draw_contour(pixels, inside, colour)
    return pixels


def colorize(cam: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """Map a float (H, W) map in [0, 1] to uint8 RGB with a matplotlib colour map."""
    values = _check_map(cam)
    lut = _lookup_table(colormap)
    colours: np.ndarray = lut[_lut_index(values, len(lut))]
    return colours


def _lookup_table(colormap: str) -> np.ndarray:
    """The colour map's entries as uint8 RGB (N, 3): indexing it is matplotlib's own lookup, without its
    float64 RGBA array of 32 bytes per pixel."""
    cmap = _colormap(colormap)
    entries: np.ndarray = cmap(np.arange(cmap.N))[:, :3]
    return (entries * 255.0 + 0.5).astype(np.uint8)


def _lut_index(values: np.ndarray, n: int) -> np.ndarray:
    """Entry of each value in [0, 1] (clipped), as matplotlib's ``Colormap.__call__`` computes it."""
    scaled = np.clip(values, 0.0, 1.0) * np.float32(n)
    index: np.ndarray = np.minimum(scaled.astype(np.intp), n - 1)
    return index


def resize_map(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float (h, w) map to ``shape`` (H, W); unchanged when it already fits."""
    values = _check_map(cam)
    if values.shape == tuple(shape):
        return values
    resized = Image.fromarray(values, mode="F").resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def save_png(picture: ImageLike | Figure, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Write an image array (uint8, or float in [0, 1]), PIL image or figure as PNG; creates the folder."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(picture, Figure):
        picture.savefig(out, format="png", dpi=dpi, bbox_inches="tight")
    else:
        Image.fromarray(as_rgb_array(picture)).save(out, format="PNG")
    return out


def grid_figure(
    rows: Sequence[Sequence[tuple[str, ImageLike]]],
    row_labels: Sequence[str] | None = None,
    cell_inches: float = 2.0,
    colormap: str = "jet",
) -> Figure:
    """Image × method grid: one row per image, one ``(title, picture)`` cell per column.

    A cell holds an RGB image (array, PIL image, path) or a 2-D float map, drawn with ``colormap`` in
    [0, 1]. Rows may be ragged; missing cells stay blank.
    """
    if not rows or not any(rows):
        raise MetricInputError("grid_figure needs at least one (title, image) cell")
    if row_labels is not None and len(row_labels) != len(rows):
        raise MetricInputError(f"{len(row_labels)} row labels for {len(rows)} rows")
    columns = max(len(row) for row in rows)
    figure = _figure((cell_inches * columns, cell_inches * len(rows) + 0.3))
    axes = figure.subplots(len(rows), columns, squeeze=False)
    for r, row in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if c < len(row):
                _draw_cell(ax, *row[c], colormap=colormap)
        if row_labels is not None:
            axes[r][0].set_axis_on()
            axes[r][0].set_xticks([])
            axes[r][0].set_yticks([])
            axes[r][0].set_ylabel(row_labels[r], fontsize=9)
    figure.tight_layout()
    return figure


def head_grid(
    image: ImageLike,
    head_maps: np.ndarray,
    columns: int = 6,
    cell_inches: float = 1.5,
    alpha: float = 0.5,
    colormap: str = "jet",
) -> Figure:
    """One panel per attention head, as DINO shows a token model's heads: head ``i``'s map over the image.

    ``head_maps`` is (heads, h, w) in [0, 1] (e.g. :meth:`camscope.methods.AttentionMap.all_heads` of one
    image; uint8 maps are read as value / 255), each resized to the image; ``columns`` panels per row, the
    rows labelled with the heads they hold.
    """
    maps = np.asarray(head_maps)
    if maps.ndim != 3 or maps.shape[0] == 0:
        raise MetricInputError(f"head_maps must have shape (heads, h, w), got {maps.shape}")
    if maps.dtype == np.uint8:
        maps = maps.astype(np.float32) / 255.0
    if columns < 1:
        raise MetricInputError(f"columns must be at least 1, got {columns}")
    cells = [(f"head {i}", overlay(image, m, alpha=alpha, colormap=colormap)) for i, m in enumerate(maps)]
    rows = [cells[start : start + columns] for start in range(0, len(cells), columns)]
    labels = [f"heads {start}–{start + len(row) - 1}" for start, row in zip(range(0, len(cells), columns), rows)]
    return grid_figure(rows, row_labels=labels, cell_inches=cell_inches, colormap=colormap)


def plot_curves(
    curves: Mapping[str, Curve],
    title: str | None = None,
    xlabel: str = "fraction of pixels removed",
    ylabel: str = "score",
) -> Figure:
    """Deletion/insertion curves, one line per label, with each curve's area under it in the legend.

    A curve is either the y values (x then runs evenly from 0 to 1, the usual fraction removed) or an
    ``(x, y)`` pair.
    """
    if not curves:
        raise MetricInputError("plot_curves needs at least one curve")
    figure = _figure((5.0, 3.6))
    ax = figure.add_subplot()
    for label, curve in curves.items():
        x, y = _curve_xy(label, curve)
        ax.plot(x, y, label=f"{label} (AUC {area_under_curve(x, y):.3f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def area_under_curve(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoidal area under y(x), normalised by the x range (so a constant score s gives s)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    width = x[-1] - x[0]
    return float(np.trapezoid(y, x) / width) if width else float(y.mean())


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render a figure to uint8 (H, W, 3): for embedding in reports or checking in tests."""
    canvas = figure.canvas
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # type: ignore[attr-defined]  # Agg canvas method


def _figure(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size)
    FigureCanvasAgg(figure)
    return figure


def _draw_cell(ax: Axes, title: str, picture: ImageLike, colormap: str) -> None:
    if isinstance(picture, np.ndarray) and picture.ndim == 2 and np.issubdtype(picture.dtype, np.floating):
        ax.imshow(picture, cmap=_colormap(colormap), vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(as_rgb_array(picture), interpolation="nearest")
    ax.set_title(title, fontsize=9)


def _curve_xy(label: str, curve: Curve) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(curve, tuple) and len(curve) == 2 and np.ndim(curve[0]) == 1:
        x, y = np.asarray(curve[0], float), np.asarray(curve[1], float)
    else:
        y = np.asarray(curve, float)
        x = np.linspace(0.0, 1.0, len(y)) if y.ndim == 1 else y
    if y.ndim != 1 or x.shape != y.shape or len(y) < 2:
        raise MetricInputError(f"curve {label!r}: expected y values or (x, y) of equal length >= 2")
    return x, y


def _check_map(cam: np.ndarray) -> np.ndarray:
    values = np.asarray(cam)
    if values.ndim != 2:
        raise MetricInputError(f"expected a 2-D map (H, W), got shape {values.shape}")
    values = values.astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise MetricInputError("the map contains NaN or infinite values")
    return values


def _colormap(name: str) -> matplotlib.colors.Colormap:
    try:
        return matplotlib.colormaps[name]
    except KeyError:
        hint = "use a matplotlib name such as 'jet' or 'viridis'"
        raise UnknownNameError(f"unknown colour map {name!r}; {hint}") from None


# ---------------------------------------------------------------------------- pytorch-grad-cam's pictures
def show_cam_on_image(
    img: np.ndarray,
    mask: np.ndarray,
    use_rgb: bool = False,
    colormap: int | str = 2,
    image_weight: float = 0.5,
) -> np.ndarray:
    """pytorch-grad-cam's overlay, pixel for pixel: ``image_weight · img + (1 − image_weight) · heat``,
    divided by its maximum, as uint8. ``img`` is float in [0, 1]; ``mask`` a (H, W) map in [0, 1].

    ``colormap`` is an OpenCV colour map number (default 2, ``cv2.COLORMAP_JET``; OpenCV's maps give BGR,
    hence ``use_rgb``) — OpenCV is then needed (``pip install camscope[compat]``) — or a matplotlib name,
    which is RGB already. :func:`overlay` is camscope's own overlay (no renormalisation, any image type).
    """
    pixels = np.asarray(img)
    if np.max(pixels) > 1:
        raise MetricInputError("show_cam_on_image expects a float image in [0, 1] (divide a uint8 image by 255)")
    if not 0 <= image_weight <= 1:
        raise MetricInputError(f"image_weight must lie in [0, 1], got {image_weight}")
    levels = (255 * np.asarray(mask)).astype(np.uint8)
    heat: np.ndarray
    if isinstance(colormap, str):
        heat = (np.asarray(_colormap(colormap)(levels))[..., :3] * 255.0 + 0.5).astype(np.uint8)
        if not use_rgb:
            heat = heat[..., ::-1]
    else:
        cv2 = _opencv()
        heat = cv2.applyColorMap(levels, colormap)
        if use_rgb:
            heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    cam = (1 - image_weight) * (heat.astype(np.float32) / 255) + image_weight * pixels
    cam = cam / np.max(cam)
    return (255 * cam).astype(np.uint8)


def create_labels_legend(concept_scores: np.ndarray, labels: Mapping[int, str], top_k: int = 2) -> list[str]:
    """One legend entry per concept: its ``top_k`` classes as ``"name:score"`` lines (the first three
    comma-separated words of each label)."""
    scores = np.asarray(concept_scores)
    best = np.argsort(scores, axis=1)[:, ::-1][:, :top_k]
    entries = []
    for concept, categories in enumerate(best):
        lines = [f"{','.join(labels[int(c)].split(',')[:3])}:{scores[concept, c]:.2f}" for c in categories]
        entries.append("\n".join(lines))
    return entries


def show_factorization_on_image(
    img: np.ndarray,
    explanations: np.ndarray,
    colors: Sequence[np.ndarray] | None = None,
    image_weight: float = 0.5,
    concept_labels: Sequence[str] | None = None,
) -> np.ndarray:
    """Each concept map of ``explanations`` (K, H, W) drawn in its own colour where it is the strongest
    (brightness = its value), blended over the float RGB ``img``; with ``concept_labels``, a legend panel
    is appended on the right. uint8, as pytorch-grad-cam 1.5.7 draws it (which needs OpenCV).

    Default colours: matplotlib's ``gist_rainbow`` at K even steps. (pytorch-grad-cam looks it up with
    ``matplotlib.cm.get_cmap``, removed in matplotlib 3.9, so there it fails without ``colors``.) Unlike
    pytorch-grad-cam, ``explanations`` is not modified in place, and the global matplotlib settings stay.
    """
    cv2 = _opencv()
    maps = np.array(explanations, dtype=np.float32)
    n_components = maps.shape[0]
    if colors is None:
        rainbow = _colormap("gist_rainbow")
        colors = [np.array(rainbow(i)) for i in np.arange(0, 1, 1.0 / n_components)]
    strongest = maps.argmax(axis=0)
    layers = []
    for i in range(n_components):
        solid = np.zeros((img.shape[0], img.shape[1], 3))
        solid[:, :, :] = colors[i][:3]
        hsv = cv2.cvtColor((solid * 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
        hsv[:, :, 2] = (255 * np.where(strongest == i, maps[i], 0)).astype(np.uint8)
        layers.append(np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), dtype=np.float32) / 255)
    stacked = np.sum(np.asarray(layers, dtype=np.float32), axis=0)
    result: np.ndarray = ((img * image_weight + stacked * (1 - image_weight)) * 255).astype(np.uint8)
    if concept_labels is None:
        return result
    legend = _legend_panel(result.shape[:2], [c[:3] for c in colors], list(concept_labels))
    combined: np.ndarray = np.hstack((result, cv2.resize(legend, (result.shape[1], result.shape[0]))))
    return combined


def _legend_panel(shape: tuple[int, int], colors: Sequence[np.ndarray], labels: list[str]) -> np.ndarray:
    """The legend of :func:`show_factorization_on_image`, drawn at the image's pixel size."""
    height, width = shape
    dpi = float(matplotlib.rcParams["figure.dpi"])
    fontsize = int(14 * height / 256 / max(1, len(labels) / 6))
    with matplotlib.rc_context({"legend.fontsize": fontsize}):
        figure = _figure((width / dpi, height / dpi))
        ax = figure.add_subplot()
        lines = [Line2D([0], [0], color=tuple(c), lw=5 * height / 256) for c in colors]
        ax.legend(lines, labels, mode="expand", fancybox=True, shadow=True)
        figure.tight_layout(pad=0, w_pad=0, h_pad=0)
        ax.axis("off")
        return figure_to_array(figure)


def _opencv() -> Any:
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MetricInputError(
            "this pytorch-grad-cam drawing needs OpenCV: pip install camscope[compat] "
            "(or pass a matplotlib colormap name)"
        ) from exc
    return cv2
