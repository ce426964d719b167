"""One pipeline: the API, the CLI, a one-shard sweep and the app's session give the same maps, scores and
warnings for the same model, images, methods and targets (camscope.pipeline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import camscope
from camscope.app.session import Explorer
from camscope.cli import main
from camscope.core.errors import CamscopeWarning
from camscope.data.synthetic import generate
from camscope.pipeline import per_image
from tests.sweep.helpers import write_config

MODEL = "mini_deit"  # a token model: the sweep keeps CNNs channels-last on CPU, which rounds differently
METHODS = ("gradcam", "layercam")
STEP = 512  # deletion / insertion pixels per step on the 64×64 input: 8 steps


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two generated scenes as PNG files, and a float TIFF outside [0, 1], which the image loader flags."""
    folder = tmp_path_factory.mktemp("pipeline_images")
    scenes = generate(2, seed=5, size=64)
    paths = []
    for i, picture in enumerate(scenes.images):
        paths.append(folder / f"scene{i}.png")
        Image.fromarray(picture).save(paths[-1])
    paths.append(folder / "bright.tiff")
    Image.fromarray(scenes.images[0][..., 0].astype(np.float32) / 100.0, mode="F").save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def reference(images: list[Path]) -> dict[str, list[camscope.Explanation]]:
    with pytest.warns(CamscopeWarning, match="outside"):
        results = camscope.explain(MODEL, [str(p) for p in images], list(METHODS))
    assert isinstance(results, dict)
    assert all("outside [0, 1]" in results[m][2].warnings[0] for m in METHODS)  # the flag to carry everywhere
    return {m: results[m] for m in METHODS}  # type: ignore[misc]


def _scores(images: list[Path], result: list[camscope.Explanation]) -> dict[str, np.ndarray]:
    return dict(camscope.evaluate(MODEL, [str(p) for p in images], result, ["deletion", "insertion"], step=STEP))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:float image:camscope.core.errors.CamscopeWarning")
def test_cli_sweep_and_app_equal_the_api(images: list[Path], reference: dict, tmp_path: Path) -> None:
    # the CLI: raw maps saved beside the overlays
    for method in METHODS:
        out = tmp_path / f"cli_{method}"
        paths = [str(p) for p in images]
        assert main(["explain", *paths, "--model", MODEL, "--method", method, "--out", str(out), "--save-map"]) == 0
        for i, path in enumerate(images):
            cli_map = np.load(out / f"{path.stem}_{MODEL}_{method}.npy")
            np.testing.assert_allclose(cli_map, reference[method][i].map, atol=1e-6)

    # a one-shard sweep over the same files: its stored (uint8) maps, its scores and its warnings
    config = write_config(
        tmp_path / "sweep.toml",
        methods=list(METHODS),
        models=[{"name": MODEL}],
        shard_size=len(images),
        images={"source": str(images[0].parent)},
        metrics={"deletion": {"step": STEP}, "insertion": {"step": STEP}},
    )
    assert main(["sweep", str(config)]) == 0
    results = tmp_path / "results"
    table = pq.read_table(results / "parts").to_pylist()
    for method in METHODS:
        expected_scores = _scores(images, reference[method])
        by_image = {p.name: i for i, p in enumerate(images)}
        rows = [r for r in table if r["method"] == method]
        assert {r["image_id"] for r in rows} == set(by_image)
        for row in rows:
            i = by_image[row["image_id"]]
            assert row["value"] == pytest.approx(float(expected_scores[row["metric"]][i]), abs=1e-6)
            assert (row["warnings"] or "") == "; ".join(reference[method][i].warnings)
        task_maps = _task_maps(results, method)
        for image_id, quantised in task_maps.items():
            expected = np.rint(np.clip(reference[method][by_image[image_id]].map, 0, 1) * 255).astype(np.uint8)
            np.testing.assert_array_equal(quantised, expected)

    # the app's session: one cell per image and method. The app explains one image per call, so it is held
    # to the API called the same way: a token model's batched matmuls round differently (~1e-6) by batch size.
    explorer = Explorer(device="cpu", max_side=1024, curve_steps=64 * 64 // STEP)
    for path in images:
        picture = explorer.open_image(path)
        alone = camscope.explain(MODEL, str(path), list(METHODS))
        assert isinstance(alone, dict)
        for method in METHODS:
            cell = explorer.cell(MODEL, method, picture)
            assert cell.error is None
            np.testing.assert_allclose(cell.explanation.map, alone[method].map, atol=1e-6)
            assert cell.explanation.warnings == alone[method].warnings
            expected_scores = _scores([path], [alone[method]])
            for column in ("deletion_auc", "insertion_auc"):
                assert cell.scores[column] == pytest.approx(float(expected_scores[column][0]), abs=1e-6)


def _task_maps(results: Path, method: str) -> dict[str, np.ndarray]:
    """The uint8 maps a sweep stored for ``method``, by image id."""
    out: dict[str, np.ndarray] = {}
    for path in sorted((results / "maps").glob(f"{MODEL}__{method}__*.npz")):
        with np.load(path) as archive:
            out.update(zip((str(i) for i in archive["ids"]), archive["maps"]))
    assert out, f"no stored maps for {method}"
    return out


def test_warnings_fold_onto_their_images() -> None:
    """One rule for every entry point: positions past n (aug_smooth's copies) fold back; none = every image."""
    flags = per_image([CamscopeWarning("flat", [1]), CamscopeWarning("copy", [4]), CamscopeWarning("all")], 3)
    assert flags == [["all"], ["flat", "copy", "all"], ["all"]]
