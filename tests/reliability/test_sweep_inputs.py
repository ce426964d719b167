"""Sweep configs and sweep inputs: bad configs are one line per problem and exit 2; one bad annotation
fails only its own image (never a neighbour), and a sweep with failed entries does not exit 0."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pytest

from camscope.sweep import ResultsStore
from tests.reliability.helpers import assert_one_line_error, save_image, voc_xml
from tests.sweep.helpers import write_config

ONE_MODEL = [{"name": "mini_resnet", "random_weights": True}]


def _config(path: Path, **overrides: object) -> Path:
    settings = {"models": ONE_MODEL, "methods": ["gradcam"], "metrics": {"deletion": {"step": 512}}}
    settings.update(overrides)
    return write_config(path, **settings)


def test_config_not_toml(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("output = [unclosed\n")
    assert_one_line_error(run_cli("sweep", path), "not valid TOML")


def test_config_missing(run_cli, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("sweep", tmp_path / "nope.toml"), "does not exist")


def test_config_problems_are_listed_not_traced(run_cli, tmp_path: Path) -> None:
    path = _config(tmp_path / "s.toml", methods=["gradcma"], shard_size=0, colour="red")
    run = run_cli("sweep", path)
    assert run.code == 2 and "Traceback" not in run.err
    assert "3 problems" in run.err and "gradcma" in run.err and "shard_size" in run.err and "colour" in run.err


def test_config_model_typo_suggests(run_cli, tmp_path: Path) -> None:
    path = _config(tmp_path / "s.toml", models=[{"name": "mini_resnt", "random_weights": True}])
    run = run_cli("sweep", path)
    assert run.code == 2 and "did you mean mini_resnet" in run.err


def test_config_output_under_a_file(run_cli, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    path = _config(tmp_path / "s.toml", output="f/results")
    assert_one_line_error(run_cli("sweep", path), "is a file")


@pytest.fixture
def annotated(tmp_path: Path) -> Path:
    """Four images with VOC files: good, non-numeric, good, another image's size."""
    images, notes = tmp_path / "images", tmp_path / "notes"
    notes.mkdir()
    for i, content in enumerate(
        [
            voc_xml(48, 40, [(5, 5, 30, 30)]),
            voc_xml(48, 40, [(5, "five", 30, 30)]),
            voc_xml(48, 40, [(10, 10, 40, 35)]),
            voc_xml(480, 400, [(10, 10, 40, 35)]),
        ]
    ):
        save_image(images / f"img{i}.png", seed=i)
        (notes / f"img{i}.xml").write_text(content)
    return _config(
        tmp_path / "s.toml",
        images={"source": "images", "annotations": "notes"},
        metrics={"pointing": {}},
        shard_size=4,
    )


def test_one_bad_annotation_fails_only_its_image(run_cli, annotated: Path) -> None:
    run = run_cli("sweep", annotated, "--no-progress")
    assert run.code == 1, run.err  # finished, with failed entries: not a success
    assert "failed entr" in run.err and "Traceback" not in run.err + run.out
    table = ResultsStore(annotated.parent / "results").read()
    status = {r["image_id"]: (r["status"], r["error"]) for r in table.to_pylist()}
    assert status["img0.png"][0] == "ok" and status["img2.png"][0] == "ok"
    assert status["img1.png"][0] == "failed" and "img1.xml" in status["img1.png"][1]
    assert "<ymin> is 'five'" in status["img1.png"][1]
    assert status["img3.png"][0] == "failed" and "is for a 480x400 image" in status["img3.png"][1]
    assert "img3.xml" in status["img3.png"][1] and "img1" not in status["img3.png"][1]


def test_sweep_warnings_column(tmp_path: Path) -> None:
    """A flagged map is stored with its warning; the report shows it."""
    from camscope.report import build_report
    from camscope.sweep import load_config, run_sweep

    images = tmp_path / "images"
    save_image(images / "a.png", seed=1)
    tif = images / "b.tif"
    import numpy as np
    from PIL import Image

    Image.fromarray(np.linspace(0, 9, 48 * 40, dtype=np.float32).reshape(40, 48), mode="F").save(tif)
    config = load_config(_config(tmp_path / "s.toml", images={"source": "images"}, shard_size=2))
    run_sweep(config, progress=False)
    table = ResultsStore(config.output).read()
    flagged = table.filter(pc.is_valid(table["warnings"])).to_pylist()
    assert {r["image_id"] for r in flagged} == {"b.tif"}
    assert "outside [0, 1]" in flagged[0]["warnings"]
    page = build_report(config.output).read_text()
    assert 'data-flagged="1"' in page and "outside [0, 1]" in page
