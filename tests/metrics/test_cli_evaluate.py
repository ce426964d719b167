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


@pytest.mark.slow
def test_evaluate_json_with_boxes_and_plot(image, tmp_path, capsys):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"cat.png": [[20, 10, 120, 140], [150, 0, 200, 50]]}))
    plot = tmp_path / "curves.png"
    code = main(
        [
            "evaluate",
            str(image),
            "--model",
            "resnet18",
            "--random-weights",
            "--json",
            "--step",
            "12544",
            "--metrics",
            "deletion,insertion,avgdrop,pointing,energy_pointing",
            "--boxes",
            str(boxes),
            "--plot",
            str(plot),
        ]
    )
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


@pytest.mark.slow
def test_evaluate_synthetic_scenes_scores_against_their_true_masks(capsys):
    """No files: generated scenes, true masks as ground truth; the trained mini ResNet points at the objects."""
    from camscope.data import generate
    from camscope.metrics import energy_pointing_game
    from camscope.models import load_model
    from camscope.testing.localization import cam_maps

    assert main(["evaluate", "--model", "mini_resnet", "--synthetic", "8", "--seed", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["image"].split("_")[1:3] for r in out["images"]] == [["3", str(i)] for i in range(8)]
    assert {"pointing", "energy_pointing", "deletion_auc", "insertion_auc"} <= set(out["mean"])
    assert out["mean"]["pointing"] >= 0.75
    scenes = generate(8, seed=3)
    model = load_model("mini_resnet")
    top1 = np.array([r["target"] for r in out["images"]])
    expected = energy_pointing_game(cam_maps(model, "gradcam", scenes.images, top1), scenes.masks).scores
    assert np.allclose([r["energy_pointing"] for r in out["images"]], expected, atol=1e-4)


def test_evaluate_synthetic_masks_follow_the_models_resize_and_crop(capsys):
    code = main(["evaluate", "--model", "resnet18", "--random-weights", "--synthetic", "2", "--metrics", "pointing"])
    assert code == 0 and "mean" in capsys.readouterr().out
    assert main(["evaluate", "x.png", "--model", "resnet18", "--synthetic", "2"]) == 2
    assert "not both" in capsys.readouterr().err
