"""A local sweep end to end: rows, maps, metadata, refusal to mix runs, resuming, failed images."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import camscope
from camscope.sweep import ResultsStore, StoreError, load_config, run_sweep
from tests.sweep.helpers import assert_same_results, result_set, write_config

METRIC_COLUMNS = {"deletion_auc", "insertion_auc", "pointing"}


def test_one_row_per_image_model_method_metric(reference) -> None:
    _, config, table = reference
    rows = result_set(table)
    assert len(rows) == 4 * len(config.models) * 2 * len(METRIC_COLUMNS)
    assert {r["metric"] for r in rows.values()} == METRIC_COLUMNS
    assert all(r["status"] == "ok" and r["random_weights"] for r in rows.values())
    deletion = next(r for r in rows.values() if r["metric"] == "deletion_auc")
    assert len(deletion["curve"]) == len(deletion["curve_x"]) == 4096 // 512 + 1
    assert deletion["curve_x"][0] == 0.0 and deletion["curve_x"][-1] == 1.0
    assert deletion["curve"][0] == pytest.approx(deletion["target_prob"], abs=1e-5)
    pointing = [r["value"] for r in rows.values() if r["metric"] == "pointing"]
    assert set(pointing) <= {0.0, 1.0}


def test_maps_and_metadata_are_stored(reference) -> None:
    _, config, table = reference
    store = ResultsStore(config.output)
    task = table["task"][0].as_py()
    maps = store.maps(task)
    assert maps["maps"].dtype == np.uint8 and maps["maps"].shape == (2, 64, 64)
    assert list(maps["ids"]) == sorted(set(table.filter(pc.equal(table["task"], task))["image_id"].to_pylist()))
    if task.endswith("__00000"):  # report_images = 2: the first shard keeps the model's view
        assert maps["views"].shape == (2, 64, 64, 3)
    part = pq.read_schema(store.parts / f"{task}.parquet").metadata
    assert part[b"config_hash"].decode() == config.hash()
    assert part[b"camscope"].decode() == camscope.__version__
    assert {b"torch", b"timm", b"device"} <= part.keys()
    run = json.loads((Path(config.output) / "run.json").read_text())
    assert run["config_hash"] == config.hash() and run["versions"]["camscope"] == camscope.__version__


def test_existing_results_need_resume_and_matching_config(reference, tmp_path: Path) -> None:
    _, config, table = reference
    with pytest.raises(StoreError, match="--resume"):
        run_sweep(config, progress=False, out=io.StringIO())
    log = io.StringIO()
    result = run_sweep(config, resume=True, progress=False, out=log)
    assert result.computed == 0 and result.skipped == result.total
    assert "already done" in log.getvalue()
    assert_same_results(ResultsStore(config.output).read(), table, tol=0)
    other = load_config(write_config(tmp_path / "other.toml", methods=["gradcam"], output=config.output))
    with pytest.raises(StoreError, match="another sweep config"):
        run_sweep(other, resume=True, progress=False, out=io.StringIO())


def test_a_corrupt_image_is_a_failed_entry_and_the_sweep_goes_on(tmp_path: Path) -> None:
    from camscope.data import generate
    from camscope.viz import save_png

    folder = tmp_path / "imgs"
    for i, picture in enumerate(generate(3, seed=1).images):
        save_png(picture, folder / f"img{i}.png")
    (folder / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    config = load_config(
        write_config(
            tmp_path / "s.toml",
            images={"source": "imgs"},
            metrics={"deletion": {"step": 1024}},
            methods=["gradcam"],
        )
    )
    log = io.StringIO()
    result = run_sweep(config, progress=False, out=log)
    table = ResultsStore(config.output).read()
    failed = table.filter(pc.equal(table["status"], "failed")).to_pylist()
    assert {r["image_id"] for r in failed} == {"img1.png"}
    assert all("cannot load image" in r["error"] and r["value"] is None for r in failed)
    ok = table.filter(pc.equal(table["status"], "ok"))
    assert set(ok["image_id"].to_pylist()) == {"img0.png", "img2.png"}
    assert {f.image_id for f in result.failures} == {"img1.png"}
    assert "img1.png: cannot load image" in log.getvalue()


@pytest.mark.slow
def test_a_detector_in_a_sweep_fails_its_images_in_one_clear_line(tmp_path: Path) -> None:
    """A sweep's rows hold one class per image: a detector is refused for what it is, where the rows had said
    'cannot find class scores in a model output of type Detections' (detections being one of the kinds listed)."""
    config = load_config(
        write_config(
            tmp_path / "s.toml",
            models=[{"name": "fasterrcnn_mobilenet_v3_large_fpn", "random_weights": True}],
            images={"source": "synthetic:2", "seed": 0},
            metrics={"deletion": {"step": 1024}},
            methods=["eigencam"],
        )
    )
    result = run_sweep(config, progress=False, out=io.StringIO())
    assert len(result.failures) == 2
    expected = "fasterrcnn_mobilenet_v3_large_fpn outputs detections: a sweep explains classifiers"
    assert all(expected in failure.error for failure in result.failures), result.failures


def test_a_segmentation_model_is_refused_by_the_sweeps_clean_forward() -> None:
    import torch

    from camscope.core.errors import TargetError
    from camscope.sweep.worker import _scores

    with pytest.raises(TargetError, match=r"seg outputs dense \(classes, H, W\) maps: a sweep explains classifiers"):
        _scores("seg", torch.zeros(2, 3, 8, 8), label_free=False)
    assert _scores("clf", torch.zeros(2, 10), label_free=False).shape == (2, 10)
