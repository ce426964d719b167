"""``camscope explain`` and ``camscope.explain`` end to end, on real (small) models and real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import camscope
import camscope.core.errors
import camscope.metrics
from camscope.cli import main


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "photo.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.slow
def test_explain_writes_overlay_map_and_top5(photo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.png"
    code = main(
        [
            "explain",
            str(photo),
            "--model",
            "resnet18",
            "--random-weights",
            "--method",
            "layercam",
            "--out",
            str(out),
            "--save-map",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    overlay = np.asarray(Image.open(out))
    cam = np.load(out.with_suffix(".random-weights.npy"))  # the name marks random weights
    # the overlay is drawn on the photo at its own 120×160 resolution; the map stays the model's 224×224
    assert overlay.shape == (120, 160, 3) and cam.shape == (224, 224) and cam.dtype == np.float32
    assert printed.count("RANDOM WEIGHTS") == 2 and "top-5:" in printed and "layercam at layer4" in printed
    assert (overlay[:4] == (220, 0, 0)).all()  # the overlay itself is marked as random-weights
    assert main(["explain", str(photo), "--model", "resnet18", "--random-weights", "--view", "input",
                 "--device", "cpu", "--out", str(out)]) == 0  # fmt: skip
    assert np.asarray(Image.open(out)).shape == (224, 224, 3)


@pytest.mark.slow
def test_explain_token_model_and_explicit_target(photo: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "explain",
            str(photo),
            "--model",
            "deit_tiny_patch16_224",
            "--random-weights",
            "--target",
            "7",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert "explained class 7" in capsys.readouterr().out
    assert (tmp_path / "photo_deit_tiny_patch16_224_gradcam.png").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "missing.png", "--model", "resnet18", "--random-weights"], "missing.png: no such file"),
        (["explain", "{photo}", "--model", "resnet18", "--random-weights", "--method", "gradcan"], "unknown method"),
        (["explain", "{photo}", "--model", "resnet18"], "weights not found"),
        (["explain", "{photo}", "--model", "resnet18", "--random-weights", "--target", "5000"], "out of range"),
        (["explain", "{photo}", "--model", "resnet18", "--random-weights", "--layer", "layer9"], "layer9"),
        (["explain", "{photo}", "--model", "resnet18", "--random-weights", "--device", "tpu"], "not a torch device"),
    ],
)
def test_explain_errors_are_one_line(argv, message, photo, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no ./pretrained_weights here
    monkeypatch.delenv("CAMSCOPE_WEIGHTS", raising=False)
    code = main([a.replace("{photo}", str(photo)) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("camscope: error:") and message in err[0]


@pytest.mark.slow
def test_api_explain_batch_matches_the_method_called_directly(photo: Path) -> None:
    model = camscope.load_model("resnet18", random_weights=True)
    spec = camscope.get_spec("resnet18")
    results = camscope.explain(model, [photo, photo], "gradcam", [3, 5])
    assert [r.target for r in results] == [3, 5]
    x = spec.preprocess(Image.open(photo).convert("RGB"))[None]
    direct = camscope.GradCAM(model, [model.layer4[-1]])(x, [5])
    np.testing.assert_allclose(results[1].map, direct[0], atol=1e-5)
    assert results[0].image.shape == (224, 224, 3) and results[0].random_weights


@pytest.mark.slow
def test_api_evaluate_scores_explanations_with_their_targets(photo: Path) -> None:
    model = camscope.load_model("resnet18", random_weights=True)
    results = camscope.explain(model, [photo, photo], "gradcam", [3, 5])
    # 4 deletion steps of 56 rows: the curve's shape is not under test here, the wiring is
    scores = camscope.evaluate(model, [photo, photo], results, ["deletion", "avgdrop"], batch_size=8, step=224 * 56)
    assert set(scores) >= {"deletion_auc", "avg_drop", "increase"}
    assert scores["deletion_auc"].shape == (2,) and np.isfinite(scores["deletion_auc"]).all()
    direct = camscope.metrics.deletion(
        model,
        torch.stack([camscope.get_spec("resnet18").preprocess(Image.open(photo).convert("RGB"))] * 2),
        np.stack([r.map for r in results]),
        [3, 5],
        step=224 * 56,
    )
    np.testing.assert_allclose(scores["deletion_auc"], direct.auc, rtol=1e-6)
    with pytest.raises(camscope.core.errors.InputError, match="stepp"):
        camscope.evaluate(model, [photo, photo], results, ["deletion"], stepp=3)


def test_overlay_on_the_original_maps_the_model_input_back(tmp_path: Path) -> None:
    # a 96×160 scene for a 64-px model: resized to 64×106, centre crop 64×64 keeps original x 31.7..128.3
    scene = np.full((96, 160, 3), 128, np.uint8)
    result = camscope.explain(camscope.load_model("mini_resnet"), scene, "gradcam")
    mapped, inside = result.original_map()
    assert mapped.shape == (96, 160) and inside[:, 33:127].all() and not inside[:, :30].any()
    assert not inside[:, 128:].any()
    picture = result.overlay()
    assert picture.shape == (96, 160, 3) and result.overlay(view="input").shape == (64, 64, 3)
    assert (picture[:, :31] < 100).all()  # the cut-away border is dimmed
    assert (picture[:, 32] == 255).all() and (picture[:, 127] == 255).all()  # and the kept region outlined
    assert np.asarray(Image.open(result.save(tmp_path / "o.png"))).shape == (96, 160, 3)
    with pytest.raises(camscope.core.errors.InputError, match="unknown view"):
        result.overlay(view="crop")


def test_list_methods_needs_no_model_and_shows_declared_parameters(capsys) -> None:
    from camscope.methods import method_names

    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--list-methods"])
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == method_names()
    assert any(line.split() == ["scorecam", "batch_size,", "progress"] for line in lines)
