"""``camscope evaluate`` end to end on a random-weights ResNet18 (wiring only: the numbers mean nothing)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from camscope.cli import main


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "cat.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (150, 200, 3), dtype=np.uint8)).save(path)
    return path


def test_evaluate_json_with_boxes_and_plot(image, tmp_path, capsys):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"cat.png": [[20, 10, 120, 140], [150, 0, 200, 50]]}))
    plot = tmp_path / "curves.png"
    code = main([
        "evaluate", str(image), "--model", "resnet18", "--random-weights", "--json", "--step", "12544",
        "--metrics", "deletion,insertion,avgdrop,pointing,energy_pointing", "--boxes", str(boxes),
        "--plot", str(plot),
    ])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["random_weights"] is True
    row = out["images"][0]
    assert len(row["deletion_curve"]) == 5 and 0 <= row["energy_pointing"] <= 1
    assert set(out["mean"]) >= {"deletion_auc", "insertion_auc", "avg_drop", "increase", "pointing"}
    assert plot.stat().st_size > 0


def test_evaluate_errors_are_one_line(image, capsys):
    assert main(["evaluate", str(image), "--model", "resnet18", "--random-weights", "--metrics", "pointing"]) == 2
    assert "--boxes" in capsys.readouterr().err
    assert main(["evaluate", str(image), "--model", "resnet18", "--metrics", "nope"]) == 2
    assert "unknown metric" in capsys.readouterr().err
