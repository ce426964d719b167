"""Ground-truth files for ``evaluate --boxes``: every malformed file is one line naming it; VOC sizes must match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.helpers import CNN, assert_one_line_error, voc_xml

POINTING = ["--metrics", "pointing"]

BAD_JSON = {
    "top_level_list": ([[1, 2, 10, 12]], "expected a JSON object"),
    "three_coordinates": ({"cat.png": [[1, 2, 10]]}, "4 numbers"),
    "five_coordinates": ({"cat.png": [1, 2, 10, 12, 14]}, "4 numbers"),
    "non_numeric": ({"cat.png": [["a", 2, 10, 12]]}, "not a finite number"),
    "boolean": ({"cat.png": [[True, 2, 10, 12]]}, "not a finite number"),
    "string_entry": ({"cat.png": "1,2,10,12"}, "list of"),
    "empty_box": ({"cat.png": [[10, 2, 10, 12]]}, "is empty"),
    "outside": ({"cat.png": [[1.5, 2, 100, 12]]}, "outside the 48x40 image"),
    "no_entry": ({"dog.png": [[1, 2, 10, 12]]}, "no boxes for cat.png"),
}


@pytest.mark.parametrize("kind", list(BAD_JSON))
def test_bad_boxes_json(run_cli, image: Path, tmp_path: Path, kind: str) -> None:
    content, needle = BAD_JSON[kind]
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps(content))
    line = assert_one_line_error(run_cli("evaluate", image, *CNN, *POINTING, "--boxes", boxes), needle)
    assert "boxes.json" in line


def test_boxes_json_not_json(run_cli, image: Path, tmp_path: Path) -> None:
    boxes = tmp_path / "boxes.json"
    boxes.write_text("{cat.png: [1, 2")
    assert_one_line_error(run_cli("evaluate", image, *CNN, *POINTING, "--boxes", boxes), "boxes.json")


def test_box_values_printed_plainly(run_cli, image: Path, tmp_path: Path) -> None:
    boxes = tmp_path / "b.json"
    boxes.write_text(json.dumps({"cat": [[0.5, 2, 60.25, 12]]}))
    line = assert_one_line_error(run_cli("evaluate", image, *CNN, *POINTING, "--boxes", boxes), "b.json")
    assert "(0.5, 2, 60.25, 12)" in line


BAD_VOC = {
    "non_numeric_size": (voc_xml("wide", 40, [(1, 1, 10, 10)]), "<width> is 'wide'"),
    "fractional_size": (voc_xml(48.5, 40, [(1, 1, 10, 10)]), "whole number"),
    "non_numeric_coordinate": (voc_xml(48, 40, [(1, "top", 10, 10)]), "<ymin> is 'top'"),
    "missing_coordinate": (voc_xml(48, 40, [(1, 1, 10, "")]), "lacks <ymax>"),
    "no_size": ("<annotation><object><name>x</name></object></annotation>", "no <size>"),
    "not_xml": ("<annotation><size>", "cannot read"),
    "box_outside": (voc_xml(48, 40, [(1, 1, 60, 10)]), "outside the 48x40 image"),
    "size_mismatch": (voc_xml(96, 80, [(1, 1, 30, 30)]), "is for a 96x80 image, but cat.png is 48x40"),
}


@pytest.mark.parametrize("kind", list(BAD_VOC))
def test_bad_voc_file(run_cli, image: Path, tmp_path: Path, kind: str) -> None:
    content, needle = BAD_VOC[kind]
    xml = tmp_path / "cat.xml"
    xml.write_text(content)
    line = assert_one_line_error(run_cli("evaluate", image, *CNN, *POINTING, "--boxes", xml), needle)
    assert "cat.xml" in line


def test_good_voc_file_scores(run_cli, image: Path, tmp_path: Path) -> None:
    xml = tmp_path / "cat.xml"
    xml.write_text(voc_xml(48, 40, [(13, 11, 24, 20)]))
    run = run_cli("evaluate", image, *CNN, *POINTING, "--boxes", xml, "--json")
    assert run.code == 0, run.err
    scores = json.loads(run.out)
    assert scores["random_weights"] is True and scores["images"][0]["pointing"] in (0.0, 1.0)


def test_metric_needing_ground_truth_without_it(run_cli, image: Path) -> None:
    assert_one_line_error(run_cli("evaluate", image, *CNN, *POINTING), "need ground truth")
