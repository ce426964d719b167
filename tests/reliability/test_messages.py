"""Messages that used to mislead: each now names the real problem (one line, exit 2, no traceback)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.helpers import CNN, assert_one_line_error, voc_xml

POINTING = ["--metrics", "pointing"]


def test_voc_file_without_objects_says_so_not_the_centre_crop(run_cli, image: Path, tmp_path: Path) -> None:
    xml = tmp_path / "cat.xml"
    xml.write_text(voc_xml(48, 40, []))
    line = assert_one_line_error(run_cli("evaluate", image, *CNN, *POINTING, "--boxes", xml), "cat.xml", "no <object>")
    assert "crop" not in line


def test_a_packaged_mini_missing_from_a_weights_folder_says_where_it_ships(run_cli, image, tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    run = run_cli("explain", image, "--model", "mini_resnet", "--weights", tmp_path / "w", "--out", tmp_path / "o")
    line = assert_one_line_error(run, "mini_resnet.safetensors", "shipped with camscope")
    assert "no public URL" not in line and "zoo_weights" in line


def test_missing_weights_name_the_cli_option_not_the_python_keyword(run_cli, image, tmp_path: Path) -> None:
    run = run_cli("explain", image, "--model", "resnet18", "--out", tmp_path / "o")
    line = assert_one_line_error(run, "weights not found", " from https://")
    assert "--random-weights" in line


def test_every_kind_of_weights_file_says_how_to_get_it() -> None:
    """The zoo listing and the missing-weights error read this; "(no public URL)" was all a mini got."""
    from camscope.models.weights import PACKAGED_DIR, WeightsFile, how_to_get

    assert how_to_get(WeightsFile("a.pth", url="https://x/a.pth")) == "download https://x/a.pth"
    assert str(PACKAGED_DIR / "m.safetensors") in how_to_get(WeightsFile("m.safetensors", packaged=True))
    assert "org/model" in how_to_get(WeightsFile("h.safetensors", hf_repo="org/model"))
    assert how_to_get(WeightsFile("private.pth")) == "no public download is known"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_fifo_is_not_called_empty_and_never_read(run_cli, tmp_path: Path) -> None:
    """Reading a FIFO with no writer blocks forever: it is refused before it is opened."""
    pipe = tmp_path / "cat.png"
    os.mkfifo(pipe)
    line = assert_one_line_error(run_cli("explain", pipe, *CNN, "--out", tmp_path / "o"), "named pipe")
    assert "empty" not in line


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_is_not_called_empty(run_cli, tmp_path: Path) -> None:
    line = assert_one_line_error(run_cli("explain", "/dev/zero", *CNN, "--out", tmp_path / "o"), "a device")
    assert "empty" not in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize("name", ["boxes.json", "cat.xml"])
def test_a_fifo_as_ground_truth_is_refused(run_cli, image: Path, tmp_path: Path, name: str) -> None:
    pipe = tmp_path / name
    os.mkfifo(pipe)
    assert_one_line_error(run_cli("evaluate", image, *CNN, *POINTING, "--boxes", pipe), name, "named pipe")
