"""``camscope demo``: the preset runs on whatever mini models exist, lists the missing, ends with the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from camscope.cli import main
from camscope.sweep import parse_config
from camscope.sweep.presets import DEMO_METHODS, MINI_MODELS, available_mini_models, demo_config_dict


def test_preset_is_a_valid_sweep_with_ground_truth_metrics(tmp_path: Path) -> None:
    ready, missing = available_mini_models(random_weights=True)
    assert ready == list(MINI_MODELS) and not missing  # the mini zoo ships with the package
    config = parse_config(demo_config_dict(tmp_path / "r", ready, random_weights=True))
    assert list(config.methods) == list(DEMO_METHODS)
    assert config.images.synthetic and config.targets == "label"
    assert {"pointing", "relevance_mass", "deletion", "insertion"} <= set(config.metrics)


@pytest.mark.slow
def test_demo_runs_and_prints_the_report_path_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "demo",
        "--out",
        str(tmp_path / "demo"),
        "--random-weights",
        "--images",
        "2",
        "--methods",
        "gradcam",
        "--no-progress",
    ]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    report = Path(lines[-1])
    assert report == (tmp_path / "demo" / "report.html").absolute() and report.stat().st_size > 10_000
    assert "RANDOM WEIGHTS" in report.read_text()
    assert main(args) == 0  # a second run resumes: nothing is recomputed
    assert "0 task(s) computed" in capsys.readouterr().out
