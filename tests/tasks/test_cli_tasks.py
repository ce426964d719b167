"""``camscope explain`` on segmentation models and detectors by name: class names and boxes as --target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.reliability.conftest import run_cli  # noqa: F401  (fixture)
from tests.reliability.helpers import assert_one_line_error, save_image

SEG = ["--model", "lraspp_mobilenet_v3_large", "--random-weights"]
DET = ["--model", "fasterrcnn_mobilenet_v3_large_fpn", "--random-weights"]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_image(tmp_path_factory.mktemp("img") / "scene.png", size=(96, 80))


def test_segmentation_class_by_name(run_cli, image: Path, tmp_path: Path) -> None:  # noqa: F811
    run = run_cli("explain", image, *SEG, "--target", "cat", "--out", tmp_path / "o.png", "--save-map")
    assert run.code == 0, run.err
    assert "explained class 8" in run.out  # 'cat' is class 8 of the VOC categories the weights publish
    assert (tmp_path / "o.png").exists() and (tmp_path / "o.random-weights.npy").exists()


def test_unknown_class_name_is_one_line_error(run_cli, image: Path, tmp_path: Path) -> None:  # noqa: F811
    run = run_cli("explain", image, *SEG, "--target", "kat", "--out", tmp_path / "o.png")
    assert_one_line_error(run, "--target", "'kat'", "did you mean cat")


@pytest.mark.slow
def test_detector_box_target(run_cli, image: Path, tmp_path: Path) -> None:  # noqa: F811
    run = run_cli(
        "explain", image, *DET, "--method", "eigencam", "--target", "box:0,0,90,70", "--out", tmp_path / "d.png"
    )
    assert run.code == 0, run.err
    assert "eigencam at backbone; explained 1 detection box(es)" in run.out and (tmp_path / "d.png").exists()


@pytest.mark.slow
def test_detector_default_target_is_said_to_be_its_confident_boxes(run_cli, image: Path, tmp_path: Path) -> None:  # noqa: F811
    """Random weights score every box ~0.2: no detection passes 0.5, and the line says the target is zero
    (not 'a label-free target'); the top classes list only labels something was detected as."""
    run = run_cli("explain", image, *DET, "--method", "eigencam", "--out", tmp_path / "d.png")
    assert run.code == 0, run.err
    assert "explained no detection box (the target is zero)" in run.out, run.out
    assert "__background__" not in run.out


def test_bad_box_is_refused_before_work(run_cli, image: Path) -> None:  # noqa: F811
    assert_one_line_error(run_cli("explain", image, *DET, "--target", "box:5,5,1,1"), "--target", "X1 < X2")


def test_a_box_target_for_a_classifier_is_one_line_error(run_cli, image: Path) -> None:  # noqa: F811
    run = run_cli("explain", image, "--model", "mini_resnet", "--target", "box:20,10,70,60")
    assert_one_line_error(run, "box target", "explains a detector's detections", "this model outputs a (10,) tensor")


def test_a_typed_box_is_in_the_images_pixels(run_cli, image: Path) -> None:  # noqa: F811
    """The 96x80 image is resized to 960x800 and centre-cropped to the detector's 800x800 input (80 px off
    the left): a box typed on the image is moved there; one beyond the image, or in the cropped-away border,
    is refused in one line."""
    from camscope.cli.options import parse_target

    name = DET[1]
    (target,) = parse_target("box:10,10,50,40", name, [(96, 80)])
    np.testing.assert_allclose(target.bounding_boxes.numpy(), [[20, 100, 420, 400]])
    assert target.labels is None  # the clean detection at the box gives its label
    unmoved = parse_target("box:10,10,50,40", name)  # no image: already in the input's pixels (the Python API's)
    np.testing.assert_allclose(unmoved.bounding_boxes.numpy(), [[10, 10, 50, 40]])
    assert_one_line_error(run_cli("explain", image, *DET, "--target", "box:0,0,400,400"), "--target", "96x80 image")
    assert_one_line_error(run_cli("explain", image, *DET, "--target", "box:0,0,5,80"), "--target", "centre crop")


def test_evaluate_scores_a_segmentation_class(run_cli, image: Path, tmp_path: Path, curve_labels: list[str]) -> None:  # noqa: F811
    step = str(520 * 520 // 2)  # the published transform's 520 px: three points per curve
    args = ["--target", "cat", "--metrics", "deletion,avgdrop", "--step", step, "--plot", tmp_path / "c.png"]
    run = run_cli("evaluate", image, *SEG, *args, "--json")
    assert run.code == 0, run.err
    row = json.loads(run.out)["images"][0]
    assert row["target"] == 8 and len(row["deletion_curve"]) == 3 and row["avg_drop"] is not None
    assert curve_labels == ["class score summed over the region"]  # what the curve scores, not a class probability


@pytest.mark.slow
def test_evaluate_scores_a_detectors_boxes(run_cli, image: Path, tmp_path: Path, curve_labels: list[str]) -> None:  # noqa: F811
    args = ["--method", "eigencam", "--target", "box:0,0,90,70", "--metrics", "deletion", "--step", "320000"]
    run = run_cli("evaluate", image, *DET, *args, "--plot", tmp_path / "c.png", "--json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["images"][0]["target"] == "box:0,0,90,70"
    assert curve_labels == ["matched detection's IoU + score"]
