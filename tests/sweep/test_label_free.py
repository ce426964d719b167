"""Label-free sweeps (``targets = "embedding"``): backbones explained by their own embedding, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import torch

from camscope import explain
from camscope.sweep import ConfigError, ResultsStore, load_config, run_sweep
from camscope.sweep.worker import load_prepared
from tests.sweep.helpers import write_config

MODELS = [{"name": "mini_deit", "random_weights": True}, {"name": "mini_dino_resnet"}]
METHODS = {"gradcam": {}, "relax": {"num_masks": 40, "seed": 1}}


@pytest.fixture(scope="module")
def label_free(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("label_free")
    config = load_config(
        write_config(
            folder / "sweep.toml",
            targets="embedding",
            models=MODELS,
            methods=METHODS,
            metrics={"deletion": {"step": 512}},
        )
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures are set up before the package's one_thread fixture
    try:
        run_sweep(config, progress=False)
    finally:
        torch.set_num_threads(threads)
    return config, ResultsStore(config.output)


def test_rows_have_no_class_and_deletion_scores_the_own_similarity(label_free) -> None:
    config, store = label_free
    table = store.read()
    assert set(table["status"].to_pylist()) == {"ok"}
    assert table.num_rows == 4 * 2 * 2  # images × models × methods, one deletion row each
    assert set(table["target"].to_pylist()) == set(table["predicted"].to_pylist()) == {None}
    for entry in config.models:
        model = load_prepared(entry, torch.device("cpu"), head=False).model
        assert model.camscope_backbone
        rows = table.filter(pc.equal(table["model"], entry.name)).to_pylist()
        x = torch.stack([model.camscope_spec.preprocess(p) for p in _scenes(config)])
        with torch.no_grad():
            embedding = model(x)
        own = (embedding * embedding).sum(dim=1)  # ⟨f(x), f(x)⟩: nothing deleted yet
        for row in rows:
            assert row["curve"][0] == pytest.approx(float(own[row["image_index"]]), rel=1e-4)


def test_the_reports_curves_say_they_score_the_similarity(label_free, tmp_path: Path, curve_labels) -> None:
    from camscope.report import build_report

    config, _ = label_free
    build_report(config.output, tmp_path / "report.html")
    assert curve_labels and set(curve_labels) == {"similarity"}  # one deletion chart per backbone


def test_maps_are_the_api_label_free_maps(label_free) -> None:
    """Grad-CAM explains ⟨f(x), f(x̃)⟩ (``targets="embedding"``); RELAX keeps its own cosine score (None)."""
    config, store = label_free
    table = store.read()
    entry = config.model("mini_dino_resnet")
    model = load_prepared(entry, torch.device("cpu"), head=False).model
    scenes = _scenes(config)
    for method, targets in (("gradcam", "embedding"), ("relax", None)):
        expected = explain(model, scenes, method, targets, **METHODS[method])
        rows = table.filter(pc.and_(pc.equal(table["model"], entry.name), pc.equal(table["method"], method)))
        for task in sorted(set(rows["task"].to_pylist())):
            stored = store.maps(task)
            for image_id, cam in zip(stored["ids"], stored["maps"]):
                index = int(str(image_id).rsplit("-", 1)[1])
                np.testing.assert_allclose(cam / 255.0, expected[index].map, atol=1 / 255 + 1e-6)


def test_token_models_keep_every_heads_attention_for_the_report(label_free) -> None:
    _, store = label_free
    table = store.read()
    first = {r["model"]: r["task"] for r in table.to_pylist() if r["task"].endswith("__00000")}
    heads = store.maps(first["mini_deit"])["head_maps"]
    views = store.maps(first["mini_deit"])["views"]
    assert heads.dtype == np.uint8 and heads.shape[:2] == (len(views), 3) and heads.shape[2:] == views.shape[1:3]
    assert (heads.reshape(*heads.shape[:2], -1).max(axis=-1) == 255).all()  # each head min-max scaled
    assert "head_maps" not in store.maps(first["mini_dino_resnet"])  # a CNN has no attention heads


def test_embedding_targets_check_only_the_backbone_weights(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "dino_resnet50_pretrain.pth").write_bytes(b"placeholder")  # config checks presence, not content
    models = [{"name": "dino_resnet50", "weights": str(weights), "input_size": 64}]
    with pytest.raises(ConfigError, match=r"dino_resnet50_linearweights\.pth"):
        load_config(write_config(tmp_path / "top1.toml", models=models))
    config = load_config(write_config(tmp_path / "embedding.toml", models=models, targets="embedding"))
    assert config.label_free and config.hash() != load_config(write_config(tmp_path / "m.toml")).hash()
    with pytest.raises(ConfigError, match="embedding"):
        load_config(write_config(tmp_path / "bad.toml", targets="own"))


def _scenes(config) -> list[np.ndarray]:
    from camscope.data import generate

    return list(generate(config.images.synthetic, seed=config.images.seed, size=config.images.size).images)
