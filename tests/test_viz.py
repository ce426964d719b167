"""Overlays, grids and curves: the pixels and texts users see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from camscope.core.errors import MetricInputError, UnknownNameError
from camscope.data import load_image_array
from camscope.viz import (
    area_under_curve,
    colorize,
    draw_boxes,
    figure_to_array,
    grid_figure,
    head_grid,
    overlay,
    plot_curves,
    resize_map,
    save_png,
)


def _image(h: int = 56, w: int = 56) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _ramp(h: int = 7, w: int = 7) -> np.ndarray:
    return np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, 1))


# ---- overlay --------------------------------------------------------------------------------------------
def test_draw_boxes_outlines_each_box_in_the_pictures_pixels() -> None:
    black = np.zeros((20, 30, 3), dtype=np.uint8)
    drawn = draw_boxes(black, np.array([[2, 3, 10, 8], [5, 5, 25, 18]]))
    white = drawn.all(axis=2)
    assert white[3, 2:10].all() and white[3:8, 2].all() and white[7, 2:10].all() and white[3:8, 9].all()
    assert white[17, 5:25].all() and white[5:18, 24].all()  # the second box, across the first
    assert not white[4, 3:9].any() and not white[10, 10:20].any()  # insides stay as they were
    assert not white[0].any() and not white[:, 28:].any()
    assert np.array_equal(draw_boxes(black, np.array([[40, 40, 50, 50]])), black)  # wholly outside: nothing
    assert np.array_equal(black, np.zeros_like(black))  # the picture given is not drawn on


def test_overlay_blends_image_and_colormap() -> None:
    image, cam = _image(), np.random.default_rng(1).random((56, 56)).astype(np.float32)
    heat = (matplotlib.colormaps["jet"](cam)[..., :3] * 255).astype(float)
    out = overlay(image, cam, alpha=0.3)
    assert out.dtype == np.uint8 and out.shape == (56, 56, 3)
    np.testing.assert_allclose(out, 0.7 * image + 0.3 * heat, atol=1.01)
    np.testing.assert_array_equal(overlay(image, cam, alpha=0.0), image)
    np.testing.assert_array_equal(overlay(image, cam, alpha=1.0), colorize(cam))


@pytest.mark.parametrize("name", ["jet", "viridis", "gray", "tab10"])
def test_colorize_is_matplotlibs_lookup_exactly(name: str) -> None:
    """The lookup table (no float64 RGBA per pixel) gives matplotlib's colours, bin edges included."""
    cmap = matplotlib.colormaps[name]
    edges = np.arange(cmap.N + 1, dtype=np.float32) / cmap.N
    values = np.concatenate([np.random.default_rng(2).random(997, dtype=np.float32), edges, [-0.5, 1.5]])
    grid = values.astype(np.float32)[None, :]
    expected = (cmap(np.clip(grid, 0.0, 1.0))[..., :3] * 255.0 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(colorize(grid, name), expected)


def test_overlay_of_a_large_image_is_drawn_in_blocks_with_the_same_pixels(monkeypatch) -> None:
    import camscope.viz as viz

    image, cam = _image(300, 257), np.random.default_rng(3).random((7, 9)).astype(np.float32)
    whole = overlay(image, cam, alpha=0.4)
    monkeypatch.setattr(viz, "_BLOCK_PIXELS", 1000)  # ~4 rows a block, the last one partial
    np.testing.assert_array_equal(overlay(image, cam, alpha=0.4), whole)
    heat = colorize(resize_map(cam, (300, 257))).astype(np.float32)
    np.testing.assert_array_equal(whole, np.rint(0.6 * image.astype(np.float32) + 0.4 * heat).astype(np.uint8))


def test_overlay_resizes_a_small_cam_to_the_image() -> None:
    out = overlay(_image(56, 80), _ramp(), alpha=1.0, colormap="gray")
    assert out.shape == (56, 80, 3)
    gray = out[..., 0].astype(int)
    assert (np.diff(gray, axis=1) >= 0).all() and gray[:, 0].max() < 20 and gray[:, -1].min() > 235
    assert (gray == gray[0]).all()  # the ramp is constant down each column


def test_resize_map_keeps_constant_maps_constant() -> None:
    np.testing.assert_allclose(resize_map(np.full((7, 7), 0.25), (224, 224)), 0.25, atol=1e-6)
    cam = _ramp()
    assert resize_map(cam, (7, 7)) is not None and np.array_equal(resize_map(cam, (7, 7)), cam)


def test_overlay_accepts_pil_images_and_clips_the_map() -> None:
    image = _image()
    clipped = overlay(Image.fromarray(image), np.full((56, 56), 3.0), alpha=1.0)
    np.testing.assert_array_equal(clipped, colorize(np.ones((56, 56))))


@pytest.mark.parametrize(
    ("cam", "error"),
    [(np.zeros((1, 7, 7)), MetricInputError), (np.full((7, 7), np.nan), MetricInputError)],
)
def test_overlay_rejects_bad_maps(cam: np.ndarray, error: type) -> None:
    with pytest.raises(error):
        overlay(_image(), cam)


def test_overlay_rejects_unknown_colormap_and_bad_alpha() -> None:
    with pytest.raises(UnknownNameError, match="no_such_map"):
        overlay(_image(), _ramp(), colormap="no_such_map")
    with pytest.raises(ValueError, match="alpha"):
        overlay(_image(), _ramp(), alpha=1.5)


@pytest.mark.slow
def test_viz_needs_no_cv2_and_no_display() -> None:
    """In a fresh interpreter with cv2 made unimportable and no display, viz still draws everything."""
    code = (
        "import sys; sys.modules['cv2'] = None; import numpy as np; import camscope.viz as v; "
        "v.overlay(np.zeros((8, 8, 3), np.uint8), np.ones((2, 2))); v.plot_curves({'a': [1, 0]}); "
        "v.figure_to_array(v.grid_figure([[('a', np.zeros((4, 4)))]])); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "MPLBACKEND")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.split() == ["False"]


# ---- saving ----------------------------------------------------------------------------------------------


def test_save_png_round_trips_arrays(tmp_path: Path) -> None:
    image = _image()
    path = save_png(image, tmp_path / "deep" / "folder" / "x.png")
    np.testing.assert_array_equal(load_image_array(path), image)
    np.testing.assert_array_equal(load_image_array(save_png(np.ones((4, 4)), tmp_path / "f.png")), 255)


def test_save_png_writes_figures(tmp_path: Path) -> None:
    path = save_png(plot_curves({"a": [1.0, 0.5, 0.0]}), tmp_path / "curve.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 100


# ---- grid --------------------------------------------------------------------------------------------------


def test_grid_figure_lays_out_images_and_maps() -> None:
    image, cam = _image(), _ramp()
    rows = [
        [("image", image), ("gradcam", cam), ("overlay", overlay(image, cam))],
        [("image", Image.fromarray(image)), ("scorecam", cam)],  # ragged: last cell blank
    ]
    figure = grid_figure(rows, row_labels=["cat.jpg", "dog.jpg"])
    axes = figure.get_axes()
    assert len(axes) == 6
    assert [ax.get_title() for ax in axes] == ["image", "gradcam", "overlay", "image", "scorecam", ""]
    assert axes[0].get_ylabel() == "cat.jpg" and axes[3].get_ylabel() == "dog.jpg"
    assert axes[1].get_images()[0].get_clim() == (0.0, 1.0)  # maps shown on the fixed [0, 1] scale
    pixels = figure_to_array(figure)
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.std() > 10


def test_grid_figure_rejects_bad_input() -> None:
    with pytest.raises(MetricInputError):
        grid_figure([])
    with pytest.raises(MetricInputError, match="row labels"):
        grid_figure([[("a", _image())]], row_labels=["x", "y"])


def test_head_grid_draws_each_head_over_the_image_in_rows() -> None:
    image = _image()
    maps = np.stack([_ramp(), _ramp().T, 1 - _ramp(), np.zeros((7, 7), np.float32), _ramp(), _ramp().T, _ramp()])
    figure = head_grid(image, maps, columns=3)
    axes = figure.get_axes()
    assert len(axes) == 9  # 3 rows of 3 panels, the last two blank
    assert [ax.get_title() for ax in axes] == [f"head {i}" for i in range(7)] + ["", ""]
    assert [axes[r * 3].get_ylabel() for r in range(3)] == ["heads 0–2", "heads 3–5", "heads 6–6"]
    # each panel is the overlay of that head's map, resized to the image
    np.testing.assert_array_equal(axes[1].get_images()[0].get_array(), overlay(image, maps[1]))
    quantised = np.rint(maps * 255).astype(np.uint8)  # as the sweep stores them: read back as value / 255
    as_uint8 = head_grid(image, quantised, columns=3).get_axes()
    np.testing.assert_array_equal(as_uint8[2].get_images()[0].get_array(), overlay(image, quantised[2] / 255.0))


def test_head_grid_rejects_bad_input() -> None:
    with pytest.raises(MetricInputError, match="heads, h, w"):
        head_grid(_image(), _ramp())
    with pytest.raises(MetricInputError, match="columns"):
        head_grid(_image(), _ramp()[None], columns=0)


# ---- curves -----------------------------------------------------------------------------------------------


def test_plot_curves_labels_each_curve_with_its_auc() -> None:
    figure = plot_curves(
        {"gradcam": [1.0, 0.5, 0.0], "random": ([0.0, 0.5, 1.0], [0.5, 0.5, 0.5]), "flat": np.ones(5)},
        title="deletion",
    )
    ax = figure.get_axes()[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["gradcam (AUC 0.500)", "random (AUC 0.500)", "flat (AUC 1.000)"]
    assert ax.get_title() == "deletion" and ax.get_xlabel() == "fraction of pixels removed"
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [0.0, 0.5, 1.0])


def test_area_under_curve() -> None:
    assert area_under_curve(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == pytest.approx(0.5)
    x = np.linspace(0, 1, 101)
    assert area_under_curve(x, x**2) == pytest.approx(1 / 3, abs=1e-4)
    assert area_under_curve(np.array([0.0, 0.5]), np.array([1.0, 1.0])) == pytest.approx(1.0)


def test_plot_curves_rejects_bad_curves() -> None:
    with pytest.raises(MetricInputError):
        plot_curves({})
    with pytest.raises(MetricInputError, match="'short'"):
        plot_curves({"short": [1.0]})
    with pytest.raises(MetricInputError, match="'mismatch'"):
        plot_curves({"mismatch": ([0.0, 1.0], [1.0, 0.5, 0.0])})
