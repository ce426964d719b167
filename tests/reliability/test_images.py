"""Bad and odd image files through ``camscope explain``: one line and exit 2, or a warning, never a traceback."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.reliability.helpers import CNN, assert_one_line_error, save_image, warning_lines


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


BAD_FILES = {
    "missing": (None, "no such file"),
    "empty": (b"", "empty"),
    "random_bytes": (bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), "not an image"),
    "text": (b"hello, I am not a picture\n" * 20, "not an image"),
    "truncated": (_png_bytes()[:60], "cat.png"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_image_file_is_one_line(kind: str, run_cli, tmp_path: Path) -> None:
    content, needle = BAD_FILES[kind]
    path = tmp_path / "cat.png"
    if content is not None:
        path.write_bytes(content)
    run = run_cli("explain", path, *CNN, "--out", tmp_path / "out")
    assert_one_line_error(run, str(path), needle)
    assert not (tmp_path / "out").exists()  # nothing was written


def test_directory_as_image(run_cli, tmp_path: Path) -> None:
    (tmp_path / "folder.png").mkdir()
    assert_one_line_error(run_cli("explain", tmp_path / "folder.png", *CNN), "directory")


def test_float_tiff_out_of_range_warns(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "depth.tif"
    Image.fromarray(np.linspace(0, 40, 48 * 40, dtype=np.float32).reshape(40, 48), mode="F").save(path)
    run = run_cli("explain", path, *CNN, "--out", tmp_path / "out")
    assert run.code == 0, run.err
    [line] = [w for w in warning_lines(run) if "depth.tif" in w]
    assert "outside [0, 1]" in line and "clipped" in line


def test_float_tiff_in_range_is_silent(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "unit.tif"
    Image.fromarray(np.linspace(0, 1, 48 * 40, dtype=np.float32).reshape(40, 48), mode="F").save(path)
    run = run_cli("explain", path, *CNN, "--out", tmp_path / "out")
    assert run.code == 0 and not [w for w in warning_lines(run) if "unit.tif" in w]


def test_decompression_bomb_warning_is_our_one_line(run_cli, tmp_path: Path, monkeypatch) -> None:
    path = save_image(tmp_path / "big.png", (120, 100))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 120 // 2 + 1)  # over the warning limit, under the error
    run = run_cli("explain", path, *CNN, "--out", tmp_path / "out")
    assert run.code == 0, run.err
    assert "DecompressionBombWarning" not in run.err
    [line] = [w for w in warning_lines(run) if "big.png" in w]
    assert "very large" in line


def test_decompression_bomb_error_is_one_line(run_cli, tmp_path: Path, monkeypatch) -> None:
    path = save_image(tmp_path / "huge.png", (120, 100))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert_one_line_error(run_cli("explain", path, *CNN), "huge.png", "too large")


def test_sixteen_bit_png_works(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    deep = Image.fromarray(np.arange(40 * 48, dtype=np.uint16).reshape(40, 48) * 30)  # uint16 → "I;16"
    assert deep.mode == "I;16"  # Pillow infers it; its ``mode`` argument is deprecated (Pillow 13 drops it)
    deep.save(path)
    run = run_cli("explain", path, *CNN, "--out", tmp_path / "out")
    assert run.code == 0 and list((tmp_path / "out").glob("deep_*.png"))


def test_images_together_with_synthetic_refused(run_cli, image: Path, tmp_path: Path) -> None:
    run = run_cli("explain", image, "--synthetic", 2, *CNN, "--out", tmp_path / "o")
    assert_one_line_error(run, "not both")
    run = run_cli("evaluate", image, "--synthetic", 2, *CNN)
    assert_one_line_error(run, "not both")


def test_synthetic_zero_refused(run_cli) -> None:
    assert_one_line_error(run_cli("explain", "--synthetic", 0, *CNN), "at least 1")


def _int32_tiff(path: Path, values: np.ndarray) -> Path:
    img = Image.fromarray(values.astype(np.int32))
    assert img.mode == "I"
    img.save(path)
    return path


def test_int32_tiff_with_eight_bit_values_is_not_black(tmp_path: Path) -> None:
    """0..255 in a 32-bit container (``convert("I")``) was divided by 257: the model saw black."""
    from camscope.data.images import as_rgb_array, load_image_array

    values = np.arange(40 * 48).reshape(40, 48) % 256
    out = load_image_array(_int32_tiff(tmp_path / "eight.tif", values))
    np.testing.assert_array_equal(out[..., 0], values)
    gray = Image.fromarray(values.astype(np.uint8)).convert("I")
    np.testing.assert_array_equal(as_rgb_array(gray)[..., 1], values)


def test_int32_tiff_beyond_sixteen_bits_is_stretched_with_a_warning(run_cli, tmp_path: Path) -> None:
    """Values above 65535 were clipped without a word (most of the image white)."""
    from camscope.data.images import load_image_array

    values = np.linspace(0, 4_000_000, 40 * 48).reshape(40, 48)
    path = _int32_tiff(tmp_path / "wide.tif", values)
    with pytest.warns(UserWarning, match=r"wide\.tif.*\[0, 4000000\].*stretched"):
        out = load_image_array(path)
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert 100 < int(np.median(out[..., 0])) < 155  # a ramp stays a ramp, not clipped to white
    run = run_cli("explain", path, *CNN, "--out", tmp_path / "out")
    assert run.code == 0, run.err
    [line] = [w for w in warning_lines(run) if "wide.tif" in w]
    assert "32-bit" in line and "stretched" in line


def test_int32_tiff_in_sixteen_bit_range_is_silent(run_cli, tmp_path: Path) -> None:
    path = _int32_tiff(tmp_path / "deep.tif", np.linspace(0, 65535, 40 * 48).reshape(40, 48))
    run = run_cli("explain", path, *CNN, "--out", tmp_path / "out")
    assert run.code == 0 and not [w for w in warning_lines(run) if "deep.tif" in w], run.err
