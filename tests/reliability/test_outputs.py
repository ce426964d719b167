"""Output paths: checked before the work, one line when unusable; same-stem inputs never overwrite each other."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.reliability.helpers import CNN, assert_one_line_error, save_image
from tests.sweep.helpers import write_config

# a location nobody can write, root included (the suite may run as root, where chmod protects nothing)
UNWRITABLE = Path("/proc/camscope-out")


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "file.txt"
    path.write_text("I am a file")
    return path


@pytest.mark.parametrize("where", ["under_file", "unwritable"])
def test_explain_out(run_cli, image: Path, a_file: Path, where: str) -> None:
    out = a_file / "maps" if where == "under_file" else UNWRITABLE
    line = assert_one_line_error(run_cli("explain", image, *CNN, "--out", out), "--out")
    assert ("is a file" in line) if where == "under_file" else ("cannot write" in line)


def test_explain_out_png_under_a_file(run_cli, image: Path, a_file: Path) -> None:
    assert_one_line_error(run_cli("explain", image, *CNN, "--out", a_file / "x.png"), "is a file")


def test_explain_out_one_png_for_two_images(run_cli, image: Path, tmp_path: Path) -> None:
    other = save_image(tmp_path / "dog.png", seed=1)
    assert_one_line_error(run_cli("explain", image, other, *CNN, "--out", tmp_path / "x.png"), "give a folder")


@pytest.mark.parametrize("where", ["under_file", "unwritable", "is_folder"])
def test_evaluate_plot_checked_before_the_work(run_cli, image: Path, a_file: Path, tmp_path: Path, where) -> None:
    plot = {"under_file": a_file / "c.png", "unwritable": UNWRITABLE / "c.png", "is_folder": tmp_path}[where]
    run = run_cli("evaluate", image, *CNN, "--plot", plot)
    assert_one_line_error(run, "--plot")
    assert "deletion_auc" not in run.out  # no table printed before the failure


def test_report_out_under_a_file(run_cli, a_file: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("report", tmp_path, "--out", a_file / "r.html"), "is a file")


def test_report_of_a_folder_that_is_no_store(run_cli, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("report", tmp_path), "not a camscope results folder")


def test_sweep_output_under_a_file(run_cli, a_file: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "s.toml", models=[{"name": "mini_resnet", "random_weights": True}])
    assert_one_line_error(run_cli("sweep", config, "--output", a_file / "res"), "results folder", "is a file")


def test_sweep_output_is_relative_to_the_current_folder(run_cli, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "work").mkdir()
    config = write_config(tmp_path / "conf" / "s.toml", models=[{"name": "mini_resnet", "random_weights": True}])
    monkeypatch.chdir(tmp_path / "work")
    run = run_cli("sweep", config, "--output", "res", "--check")
    assert run.code == 0 and str(tmp_path / "work" / "res") in run.out
    run = run_cli("sweep", config, "--check")  # the config's own output: beside the config file
    assert run.code == 0 and str(tmp_path / "conf" / "results") in run.out


def test_same_stem_inputs_do_not_overwrite(run_cli, tmp_path: Path) -> None:
    png = save_image(tmp_path / "a" / "cat.png", seed=1)
    jpg = tmp_path / "a" / "cat.jpg"
    Image.open(save_image(tmp_path / "tmp.png", seed=2)).convert("RGB").save(jpg)
    twin = save_image(tmp_path / "b" / "cat.png", seed=3)
    run = run_cli("explain", png, jpg, twin, *CNN, "--out", tmp_path / "o", "--save-map")
    assert run.code == 0, run.err
    written = sorted(p.name for p in (tmp_path / "o").glob("*.png"))
    assert len(written) == 3, written
    assert len(list((tmp_path / "o").glob("*.random-weights.npy"))) == 3


def test_save_map_marks_random_weights(run_cli, image: Path, tmp_path: Path) -> None:
    run = run_cli("explain", image, *CNN, "--out", tmp_path / "o.png", "--save-map")
    assert run.code == 0
    assert (tmp_path / "o.random-weights.npy").is_file() and not (tmp_path / "o.npy").exists()


def test_evaluate_plot_marks_random_weights(run_cli, image: Path, tmp_path: Path) -> None:
    run = run_cli("evaluate", image, *CNN, "--plot", tmp_path / "c.png")
    assert run.code == 0, run.err
    picture = np.asarray(Image.open(tmp_path / "c.png").convert("RGB")).astype(int)
    top = picture[: picture.shape[0] // 8]
    red = (top[..., 0] > 180) & (top[..., 1] < 60) & (top[..., 2] < 60)
    assert red.sum() > 50  # the red RANDOM WEIGHTS title


def test_read_only_folder(run_cli, image: Path, tmp_path: Path) -> None:
    """A folder without write permission is refused up front; root may write there, and is not refused.

    The check writes a probe file instead of reading permission bits, so it is right for both: as root
    (CI here) the command must succeed, and anywhere else it must fail in one line.
    """
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        run = run_cli("explain", image, *CNN, "--out", folder / "o")
        if os.geteuid() == 0:
            assert run.code == 0, run.err
            assert any((folder / "o").iterdir())
        else:
            assert_one_line_error(run, "cannot write")
    finally:
        folder.chmod(0o700)
