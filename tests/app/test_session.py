"""The explorer's functions as plain unit tests (camscope.app.session): no browser, no Gradio."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import camscope
from camscope import evaluate, explain, load_model
from camscope.app.session import (
    Explorer,
    cell_picture,
    curves_pictures,
    grid_picture,
    table_rows,
    top_class_labels,
    write_csv,
)
from camscope.cli import main
from camscope.core.errors import ImageLoadError, InputError
from camscope.methods import method_names


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return Explorer(device="cpu", max_side=100, curve_steps=4)


def test_choices_come_from_the_zoo_and_the_method_registry(explorer: Explorer, tmp_path: Path) -> None:
    choices = {c.name: c for c in Explorer(weights=str(tmp_path), device="cpu").model_choices()}
    assert choices["mini_resnet"].ready  # packaged weights: always there
    assert not choices["resnet50"].ready and "resnet50-0676ba61.pth" in choices["resnet50"].note
    assert explorer.method_choices() == method_names()


def test_a_cell_is_what_explain_and_evaluate_give_and_is_cached(explorer: Explorer) -> None:
    scene = explorer.scene(2)
    cell = explorer.cell("mini_resnet", "Grad-CAM", scene)
    assert cell.error is None and cell.method == "gradcam"
    model = load_model("mini_resnet")
    direct = explain(model, scene.pixels, "gradcam")
    np.testing.assert_allclose(cell.explanation.map, direct.map, atol=1e-6)
    step = 64 * 64 // 4
    scores = evaluate(model, scene.pixels, direct, ["deletion", "insertion"], step=step)
    assert cell.scores["deletion_auc"] == pytest.approx(float(scores["deletion_auc"][0]), abs=1e-6)
    assert len(cell.curves["deletion_auc"][1]) == 5 and {"pointing", "energy_pointing"} <= set(cell.scores)
    assert explorer.cell("mini_resnet", "gradcam", scene) is cell  # same key: the cached cell
    other = explorer.cell("mini_resnet", "gradcam", scene, target="0")
    assert other is not cell and other.explanation.target == 0


def test_targets_by_name_or_index_and_bad_ones_as_messages(explorer: Explorer, tmp_path: Path) -> None:
    scene = explorer.scene(2)
    assert explorer.cell("mini_resnet", "gradcam", scene, target="Star").explanation.target == 3
    assert "did you mean star" in explorer.cell("mini_resnet", "gradcam", scene, target="stra").error
    assert "out of range" in explorer.cell("mini_resnet", "gradcam", scene, target="99").error
    assert "unknown method" in explorer.cell("mini_resnet", "gradcan", scene).error
    missing = Explorer(weights=str(tmp_path), device="cpu").cell("resnet50", "gradcam", scene)
    assert "weights not found" in missing.error and "resnet50-0676ba61.pth" in missing.error


def test_uploads_are_checked_and_big_ones_downscaled(explorer: Explorer, tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ImageLoadError):
        explorer.open_image(text)
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (150, 300, 3), dtype=np.uint8)).save(big)
    picture = explorer.open_image(big)
    assert picture.pixels.shape == (50, 100, 3) and "downscaled to 100×50" in picture.notes[0]
    broken = tmp_path / "broken.png"
    broken.write_bytes(big.read_bytes()[:200])
    with pytest.raises(ImageLoadError, match=r"broken\.png"):
        explorer.open_image(broken)
    with pytest.raises(InputError, match="no image"):
        list(explorer.run(["mini_resnet"], ["gradcam"], None))
    with pytest.raises(InputError, match="at least one method"):
        list(explorer.run(["mini_resnet"], [], picture))


def test_grid_table_csv_and_curves(explorer: Explorer, tmp_path: Path) -> None:
    scene = explorer.scene(2)
    cells = list(explorer.run(["mini_resnet"], ["gradcam", "nonsense"], scene))
    assert cells[0].error is None and "unknown method" in cells[1].error
    grid = grid_picture(cells, scene)
    assert grid.ndim == 3 and grid.shape[1] > grid.shape[0]  # one row, two columns
    overlay = cell_picture(cells[0], scene)
    assert (overlay[scene.mask & ~np.roll(scene.mask, 1, 0)] == 255).any()  # the true mask's contour
    rows = table_rows(cells)
    assert rows[0]["model"] == "mini_resnet" and isinstance(rows[0]["deletion_auc"], float)
    assert rows[1]["deletion_auc"] == "" and "unknown method" in rows[1]["message"]
    with write_csv(cells, tmp_path / "s.csv").open() as handle:
        read = list(csv.DictReader(handle))
    assert float(read[0]["insertion_auc"]) == rows[0]["insertion_auc"]
    assert [p.shape[2] for p in curves_pictures(cells)] == [3, 3]
    labels = top_class_labels(cells)
    assert labels[0][1] == cells[0].explanation.top_classes[0][0] and "%" in labels[0][0]


def test_run_stops_between_cells_when_cancelled(explorer: Explorer) -> None:
    import threading

    cancel = threading.Event()
    cells = explorer.run(["mini_resnet"], ["gradcam", "layercam"], explorer.scene(2), cancel=cancel)
    next(cells)
    cancel.set()
    assert list(cells) == []


def test_a_long_cell_reports_progress_and_stops_within_a_chunk(explorer: Explorer) -> None:
    import threading

    scene = explorer.scene(4)
    reports: list[tuple[int, int, str]] = []
    cancel = explorer.start_run("page")
    stopped = explorer.cell(
        "mini_resnet", "scorecam", scene, cancel=cancel,
        report=lambda *r: (reports.append(r), explorer.stop_run("page")),
    )  # fmt: skip
    assert stopped.error == "stopped on request" and stopped.explanation is None
    assert len(reports) == 1 and reports[0][1] > 1 and reports[0][2] == "Score-CAM"  # one chunk, then it stopped
    assert not explorer.stop_run("page")  # already stopped
    seen: list[str] = []
    cells = list(
        explorer.run(["mini_resnet"], ["scorecam"], scene, "", threading.Event(), lambda *r: seen.append(r[2]))
    )
    assert cells[0].error is None and cells[0] is not stopped  # a stopped cell is not cached: computed again
    assert seen[0] == "mini_resnet × scorecam: Score-CAM" and "mini_resnet × scorecam: scoring" in seen


def test_label_free_cells_explain_the_backbone_by_its_embedding(explorer: Explorer, curve_labels: list[str]) -> None:
    from camscope.core.targets import SimilarityTarget

    scene, other = explorer.scene(2), explorer.scene(5)
    own = explorer.cell("mini_dino_resnet", "layercam", scene, label_free=True)
    assert own.error is None and own.target == "own embedding" and own.explanation.top_classes == []
    backbone = load_model("mini_dino_resnet", head=False)
    direct = explain(backbone, scene.pixels, "layercam", "embedding")
    np.testing.assert_allclose(own.explanation.map, direct.map, atol=1e-6)
    scores = evaluate(backbone, scene.pixels, direct, ["deletion"], "embedding", step=64 * 64 // 4)
    assert own.scores["deletion_auc"] == pytest.approx(float(scores["deletion_auc"][0]), rel=1e-5)
    similar = explorer.cell("mini_dino_resnet", "layercam", scene, label_free=True, reference=other)
    reference = SimilarityTarget(camscope.embed(backbone, other.pixels)[0], kind="cosine")
    np.testing.assert_allclose(similar.explanation.map, explain(backbone, scene.pixels, "layercam", reference).map,
                               atol=1e-6)  # fmt: skip
    assert similar.target == f"similarity to {other.name}" and similar is not own
    assert explorer.cell("mini_dino_resnet", "layercam", scene) is not own  # with its head: another cell
    rows = table_rows([own, similar])
    assert [r["target"] for r in rows] == ["own embedding", f"similarity to {other.name}"]
    classed = explorer.cell("mini_resnet", "layercam", scene)
    assert (own.score, similar.score, classed.score) == ("similarity", "similarity", "target probability")
    curves_pictures([own, classed])  # one plot per metric over both cells: its y axis names both scores
    assert curve_labels == ["similarity / target probability"] * 2


def test_attention_heads_of_token_models_and_a_message_for_cnns(explorer: Explorer) -> None:
    from camscope.viz import figure_to_array, head_grid

    scene = explorer.scene(2)
    heads = explorer.heads("mini_deit", scene)
    maps, view = camscope.attention_heads(load_model("mini_deit"), scene.pixels)
    assert heads.error is None and maps.shape == (3, 64, 64) and view.shape == (64, 64, 3)
    np.testing.assert_array_equal(heads.picture, figure_to_array(head_grid(view, maps)))
    assert explorer.heads("mini_deit", scene) is heads  # cached
    cnn = explorer.heads("mini_resnet", scene)
    assert cnn.picture is None and cnn.error == "no class-token attention (a CNN or Swin): no per-head picture"
    wrong = explorer.cell("mini_resnet", "attention", scene)  # an attention method on a CNN: a message
    assert wrong.explanation is None and "need a ViT-family model with a class token" in wrong.error


def test_app_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    assert main(["app"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["camscope: error: camscope app needs the optional extra: pip install 'camscope[app]'"]
