"""``--backbone`` and label-free targets from the command line and the API, on the shipped mini zoo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import camscope
from camscope.cli import main
from camscope.data import generate


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("scenes")
    paths = []
    for i, image in enumerate(generate(2, seed=1).images):
        paths.append(folder / f"s{i}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


@pytest.mark.parametrize("name", ["mini_resnet", "mini_deit", "mini_cait", "mini_swin", "mini_xcit", "mini_dino_xcit"])
def test_backbone_outputs_the_embedding_the_head_reads(name) -> None:
    full = camscope.load_model(name)
    backbone = camscope.load_model(name, head=False)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        embedding = backbone(x)
        head = full.get_classifier() if hasattr(full, "get_classifier") else full.fc
        torch.testing.assert_close(head(embedding), full(x), atol=1e-5, rtol=1e-5)
    assert embedding.shape[1] == head.in_features and backbone.camscope_backbone


def test_explain_on_a_backbone_defaults_to_the_own_embedding(scenes) -> None:
    result = camscope.explain(camscope.load_model("mini_resnet", head=False), scenes[0], method="layercam")
    assert result.top_classes == [] and result.target is None and result.map.max() == pytest.approx(1, abs=1e-6)
    same = camscope.explain(camscope.load_model("mini_resnet", head=False), scenes[0], "layercam", targets="embedding")
    np.testing.assert_array_equal(result.map, same.map)


def test_cli_backbone_relax_and_similarity_target(scenes, tmp_path, capsys) -> None:
    out = tmp_path / "r.png"
    code = main(["explain", str(scenes[0]), "--model", "mini_dino_resnet", "--backbone", "--method", "relax",
                 "--out", str(out), "--save-map"])  # fmt: skip
    assert code == 0 and out.exists() and "label-free" in capsys.readouterr().out
    out2 = tmp_path / "s.png"
    code = main(["explain", str(scenes[0]), "--model", "mini_dino_resnet", "--backbone", "--method", "hirescam",
                 "--target", f"similarity:{scenes[1]}", "--out", str(out2)])  # fmt: skip
    assert code == 0 and out2.exists()


def test_cli_evaluate_scores_the_similarity_on_a_backbone(scenes, tmp_path, capsys) -> None:
    import json

    code = main(["evaluate", str(scenes[0]), "--model", "mini_dino_resnet", "--backbone", "--method", "layercam",
                 "--metrics", "deletion", "--json"])  # fmt: skip
    assert code == 0
    row = json.loads(capsys.readouterr().out)["images"][0]
    backbone = camscope.load_model("mini_dino_resnet", head=False)
    own = camscope.embed(backbone, scenes[0])[0]
    assert row["target"] == "embedding"
    assert row["deletion_curve"][0] == pytest.approx(float(own @ own), rel=1e-4)  # ⟨f(x), f(x)⟩ before deletion
    result = camscope.explain(backbone, scenes[0], "layercam")
    api = camscope.evaluate(backbone, scenes[0], result, ["deletion"])
    assert row["deletion_auc"] == pytest.approx(float(api["deletion_auc"][0]), abs=1e-6)
    assert api.score == "similarity"  # the curves' y axis: the embedding inner product, not a probability
    plot = tmp_path / "curves.png"
    code = main(["evaluate", str(scenes[0]), "--model", "mini_dino_resnet", "--backbone", "--method", "relax",
                 "--target", f"similarity:{scenes[1]}", "--metrics", "deletion", "--plot", str(plot)])  # fmt: skip
    assert code == 0 and plot.exists() and "similarity:" in capsys.readouterr().out
