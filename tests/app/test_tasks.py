"""The app's session on a user's segmentation model and detector, registered in the zoo with their weights:
each gets its map and its deletion / insertion scores, through the same pipeline as explain and evaluate."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

import camscope
from camscope.app.session import Explorer, cell_title, table_rows
from camscope.models import ModelSpec, Preprocess, WeightsFile, register_model, unregister_model
from camscope.models.spec import TorchvisionBuilder
from camscope.pipeline import model_and_batch, target_from_text
from tests.tasks.conftest import seeing_detector, torchvision_task_model

MODELS = {  # name: (torchvision architecture, its keywords, input side, method)
    "user_segmenter": ("lraspp_mobilenet_v3_large", (("num_classes", 3),), 64, "gradcam"),
    "user_detector": (
        "fasterrcnn_mobilenet_v3_large_fpn",
        (("num_classes", 5), ("min_size", 128), ("max_size", 128)),
        128,
        "eigencam",
    ),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread: None) -> Iterator[None]:
    yield


@pytest.fixture(scope="module")
def explorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Explorer]:
    """Both models in the zoo, their (seeded random) weights saved where the app is told to look; the
    detector's as :func:`seeing_detector` sets them, so that its scores depend on the image."""
    folder = tmp_path_factory.mktemp("weights")
    for name, (arch, kwargs, side, _) in MODELS.items():
        model = seeing_detector(side) if name == "user_detector" else torchvision_task_model(arch, **dict(kwargs))
        torch.save(model.state_dict(), folder / f"{name}.pth")
        mean, std = ((0.0,) * 3, (1.0,) * 3) if "rcnn" in arch else ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        register_model(
            ModelSpec(
                name,
                arch.split("_")[0],
                TorchvisionBuilder(arch, kwargs),  # it never fetches a backbone
                Preprocess(side, (side, side), "bilinear", mean, std),
                weights=(WeightsFile(f"{name}.pth"),),
            )
        )
    yield Explorer(weights=str(folder), device="cpu", curve_steps=4)
    for name in MODELS:
        unregister_model(name)


def _typed_target(model: torch.nn.Module, name: str, pixels: np.ndarray) -> str:
    """What a user types: nothing for the segmenter (its class on most pixels), a detection's box for the
    detector, in the picture's pixels (the square scene is resized to the model's square input)."""
    if name == "user_segmenter":
        return ""
    batch = model_and_batch(model, pixels)
    with torch.no_grad():
        box = model(batch.x)[0]["boxes"][0] * pixels.shape[1] / batch.x.shape[-1]
    return "box:" + ",".join(f"{v:.2f}" for v in box.tolist())


@pytest.mark.parametrize("name", list(MODELS))
def test_a_task_model_gets_its_map_and_scores(explorer: Explorer, name: str) -> None:
    method, side = MODELS[name][3], MODELS[name][2]
    scene = explorer.scene(2)
    model = explorer.model(name)
    typed = _typed_target(model, name, scene.pixels)
    cell = explorer.cell(name, method, scene, target=typed)
    assert cell.error is None, cell.error
    size = (scene.pixels.shape[1], scene.pixels.shape[0])
    direct = camscope.explain(model, scene.pixels, method, target_from_text(typed, model, image_size=size))
    assert isinstance(direct, camscope.Explanation)
    np.testing.assert_allclose(cell.explanation.map, direct.map, atol=1e-6)
    scores = camscope.evaluate(model, scene.pixels, direct, ["deletion", "insertion"], step=side * side // 4)
    assert cell.scores["deletion_auc"] == pytest.approx(float(scores["deletion_auc"][0]), abs=1e-6)
    deletion = cell.curves["deletion_auc"][1]
    assert len(deletion) == 5 and deletion[0] > 0.5  # the clean image scores its target (a matched box: IoU 1 + score)
    assert np.ptp(deletion) > 1e-3  # and deleting pixels changes it
    assert cell_title(cell).startswith(method) and "None" not in cell_title(cell)
    assert table_rows([cell])[0]["message"] == ""
