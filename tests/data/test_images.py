"""The image loader on real files of every kind it must convert or reject."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camscope.core.errors import ImageLoadError
from camscope.data import as_rgb_array, load_image, load_image_array


def _save(img: Image.Image, path: Path, **kwargs) -> Path:
    img.save(path, **kwargs)
    return path


def _noise(h: int = 32, w: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ---- conversions ----------------------------------------------------------------------------------------


def test_rgb_png_round_trips_exactly(tmp_path: Path) -> None:
    pixels = _noise()
    path = _save(Image.fromarray(pixels), tmp_path / "rgb.png")
    out = load_image_array(path)
    assert out.dtype == np.uint8 and out.shape == (32, 48, 3)
    np.testing.assert_array_equal(out, pixels)
    assert load_image(path).mode == "RGB"


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = load_image_array(_save(Image.fromarray(gray, mode="L"), tmp_path / "gray.png"))
    assert out.shape == (16, 16, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_one_bit_image_is_black_and_white(tmp_path: Path) -> None:
    bits = Image.fromarray(np.eye(8, dtype=bool))
    out = load_image_array(_save(bits, tmp_path / "bits.png"))
    np.testing.assert_array_equal(out[..., 0], np.eye(8, dtype=np.uint8) * 255)


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 0, 0)
    rgba[0, :, 3] = (0, 128, 255)  # transparent, half, opaque
    rgba[1, :, 3] = 255
    out = load_image_array(_save(Image.fromarray(rgba, mode="RGBA"), tmp_path / "rgba.png"))
    np.testing.assert_array_equal(out[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(out[0, 2], (200, 0, 0))
    np.testing.assert_allclose(out[0, 1], (227, 127, 127), atol=1)  # 0.5 * colour + 0.5 * white
    np.testing.assert_array_equal(out[1], np.tile((200, 0, 0), (3, 1)))


def test_gray_with_alpha_is_composited_on_white(tmp_path: Path) -> None:
    la = np.stack([np.full((4, 4), 10, np.uint8), np.zeros((4, 4), np.uint8)], axis=-1)
    out = load_image_array(_save(Image.fromarray(la, mode="LA"), tmp_path / "la.png"))
    assert (out == 255).all()


def test_palette_image_keeps_its_colours(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    pixels[:2] = (10, 200, 30)
    pixels[2:] = (250, 5, 100)
    palette = Image.fromarray(pixels).quantize(colors=2)
    assert palette.mode == "P"
    np.testing.assert_array_equal(load_image_array(_save(palette, tmp_path / "p.png")), pixels)


@pytest.mark.parametrize("suffix", ["png", "gif"])
def test_palette_transparency_is_composited_on_white(tmp_path: Path, suffix: str) -> None:
    img = Image.new("P", (4, 2))
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * (3 * 254))
    img.putdata([0, 0, 1, 1, 0, 0, 1, 1])
    out = load_image_array(_save(img, tmp_path / f"pt.{suffix}", transparency=0))
    np.testing.assert_array_equal(out[:, :2], np.full((2, 2, 3), 255))
    np.testing.assert_array_equal(out[:, 2:], np.tile((0, 0, 255), (2, 2, 1)))


def test_sixteen_bit_png_is_scaled_to_eight_bit(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 128, 65535, 257]], dtype=np.uint16)
    img = Image.fromarray(values)
    assert img.mode.startswith("I;16")
    out = load_image_array(_save(img, tmp_path / "deep.png"))
    np.testing.assert_array_equal(out[0, :, 0], (0, 128, 255, 1))


def test_mode_i_tiff_is_read_as_sixteen_bit(tmp_path: Path) -> None:
    img = Image.fromarray(np.array([[0, 65535, 257 * 64]], dtype=np.int32))
    assert img.mode == "I"
    out = load_image_array(_save(img, tmp_path / "deep.tif"))
    np.testing.assert_array_equal(out[0, :, 1], (0, 255, 64))


def test_float_tiff_in_unit_range_is_scaled(tmp_path: Path) -> None:
    img = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert img.mode == "F"
    out = load_image_array(_save(img, tmp_path / "float.tif"))
    np.testing.assert_array_equal(out[0, :, 2], (0, 128, 255))


def test_cmyk_is_converted_to_rgb(tmp_path: Path) -> None:
    cmyk = Image.fromarray(_noise()).convert("CMYK")
    out = load_image_array(_save(cmyk, tmp_path / "cmyk.tif"))
    np.testing.assert_array_equal(out, np.asarray(cmyk.convert("RGB")))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """Stored 40 wide x 20 high, left half red; orientation 6 means "rotate 90° clockwise to view"."""
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(Image.fromarray(stored), tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = load_image_array(path).astype(int)
    assert out.shape == (40, 20, 3)  # upright: now tall
    top, bottom = out[2:18].reshape(-1, 3).mean(0), out[22:38].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 50  # the stored left (red) column is the viewed top
    assert bottom[2] > 200 and bottom[0] < 50


def test_first_frame_of_an_animation(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(load_image_array(path)[0, 0], (255, 0, 0))


# ---- errors -----------------------------------------------------------------------------------------------


def _assert_load_error(path: Path, words: str) -> None:
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message and words in message, message
    assert "\n" not in message
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_missing_file(tmp_path: Path) -> None:
    _assert_load_error(tmp_path / "nope.png", "no such file")


def test_directory(tmp_path: Path) -> None:
    _assert_load_error(tmp_path, "directory")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    _assert_load_error(tmp_path / "empty.png", "empty")


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("not really a jpeg\n")
    _assert_load_error(tmp_path / "notes.jpg", "not an image")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_fails_at_load(tmp_path: Path, fmt: str) -> None:
    whole = _save(Image.fromarray(_noise(64, 64)), tmp_path / f"whole.{fmt.lower()}", format=fmt)
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    _assert_load_error(cut, "truncated")


def test_corrupt_png_body(tmp_path: Path) -> None:
    whole = _save(Image.fromarray(_noise(64, 64)), tmp_path / "whole.png")
    data = bytearray(whole.read_bytes())
    data[100:400] = bytes(300)  # zeroes inside the compressed image data: bad CRC / bad zlib stream
    (tmp_path / "bad.png").write_bytes(bytes(data))
    _assert_load_error(tmp_path / "bad.png", "corrupt")


# ---- arrays and PIL images -----------------------------------------------------------------------------


def test_uint8_rgb_array_passes_through() -> None:
    pixels = _noise()
    np.testing.assert_array_equal(as_rgb_array(pixels), pixels)


def test_array_conversions() -> None:
    gray = np.array([[0, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(as_rgb_array(gray), [[[0, 0, 0], [255, 255, 255]]])
    np.testing.assert_array_equal(as_rgb_array(gray[..., None]), as_rgb_array(gray))
    np.testing.assert_array_equal(as_rgb_array(np.array([[0.0, 1.0]])), as_rgb_array(gray))
    np.testing.assert_array_equal(as_rgb_array(np.array([[False, True]])), as_rgb_array(gray))
    np.testing.assert_array_equal(as_rgb_array(np.array([[0, 65535]], dtype=np.uint16)), as_rgb_array(gray))
    transparent = np.zeros((1, 1, 4), dtype=np.uint8)
    np.testing.assert_array_equal(as_rgb_array(transparent), [[[255, 255, 255]]])


def test_pil_image_and_path_are_accepted(tmp_path: Path) -> None:
    pixels = _noise()
    path = _save(Image.fromarray(pixels), tmp_path / "x.png")
    np.testing.assert_array_equal(as_rgb_array(Image.fromarray(pixels).convert("RGBA")), pixels)
    np.testing.assert_array_equal(as_rgb_array(path), pixels)
    np.testing.assert_array_equal(as_rgb_array(str(path)), pixels)


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((3, 8, 8)), "channels first"),
        (np.zeros((8,)), "(8,)"),
        (np.full((2, 2), 1.5), "[0, 1]"),
        (np.full((2, 2), np.nan), "NaN"),
        (np.full((2, 2), 300), "[0, 255]"),
    ],
)
def test_bad_arrays_are_rejected(array: np.ndarray, words: str) -> None:
    with pytest.raises(ImageLoadError, match=re.escape(words)):
        as_rgb_array(array)


def test_unsupported_type_is_rejected() -> None:
    with pytest.raises(ImageLoadError, match="list"):
        as_rgb_array([[0, 1]])  # type: ignore[arg-type]
