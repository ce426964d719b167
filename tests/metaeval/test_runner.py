"""The runner and summary on a tiny setting (one trained mini, a few images, maps and metrics): rows,
resume, settings clashes, flagged rows for flipped predictions and for ground truth a metric cannot have."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from camscope.core.errors import CamscopeWarning, InputError, MetricInputError
from camscope.metaeval import runner as runner_module
from camscope.metaeval.config import MetaevalConfig
from camscope.metaeval.runner import FLIPPED, NO_GROUND_TRUTH, NO_METHOD, read_rows, run_metaeval
from camscope.metaeval.summary import PLOT_FILE, SUMMARY_FILE, TABLE_FILE, summarize, write_outputs
from camscope.metrics import Column, register_metric, unregister_metric

pytestmark = pytest.mark.slow  # each test runs a trained mini over a few images (seconds each)

TINY = MetaevalConfig(
    models=("mini_resnet",),
    images=4,
    shard_size=2,
    methods=("gradcam", "randomcam"),
    metrics=("deletion", "energy_pointing"),
    metric_params={"deletion": {"step": 2048}},
    bootstrap=50,
)


def _run(config: MetaevalConfig, out: Path, jobs: int = 1) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CamscopeWarning)
        run_metaeval(config, out, progress=False, jobs=jobs)
    return [w for w in caught if isinstance(w.message, CamscopeWarning)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, torch_threads) -> Path:
    out = tmp_path_factory.mktemp("metaeval")
    with torch_threads(1):
        _run(TINY, out)
    return out


def test_rows_cover_every_condition_map_image_and_column(tiny):
    table, meta, seconds = read_rows(tiny)
    rows = table.to_pylist()
    assert meta["settings"]["metrics"] == ["deletion", "energy_pointing"] and seconds > 0 and meta["cpu_seconds"] > 0
    keys = {(r["condition"], r["method"], r["image_index"], r["column"]) for r in rows}
    conditions = ("clean", "input", "model", "disrupted")
    maps = ("gradcam", "randomcam", "oracle", "inverse")
    expected = {
        (c, m, i, col)
        for c in conditions
        for m in maps
        for i in range(4)
        for col in ("deletion_auc", "energy_pointing")
    }
    assert keys == expected and len(rows) == len(expected)
    assert all(r["status"] == "ok" and np.isfinite(r["value"]) for r in rows)
    oracle = [r for r in rows if r["method"] == "oracle" and r["condition"] == "clean"]
    assert all(r["gt_energy"] == 1.0 for r in oracle)  # the known answer of the true mask
    deletion = [r for r in rows if r["column"] == "deletion_auc" and r["condition"] == "clean"]
    # 2 steps of 2048 px; per call (one shard: 2 images x 4 maps) the clean images run once each, the all-zeros
    # substrate once, the middle step once per row: (2 + 1 + 8) / 8 forwards per image and map
    assert {r["forwards"] for r in deletion} == {11 / 8}
    energy = [r for r in rows if r["column"] == "energy_pointing"]
    assert {r["forwards"] for r in energy} == {0.0}


def test_each_images_drop_under_a_constant_filled_object_is_the_models_own(tiny):
    """fill_drop_*: the true class's probability on the scene minus with the object set to the fill, recomputed
    here one image at a time."""
    from camscope.data.synthetic import generate, to_input
    from camscope.models import get_spec, load_model

    table, _, _ = read_rows(tiny)
    spec, model = get_spec("mini_resnet"), load_model("mini_resnet").eval()
    data = generate(TINY.images, TINY.seed, counterfactual=True)
    for i in range(TINY.images):
        x = to_input(data.images[i : i + 1], tuple(spec.mean), tuple(spec.std))
        inside = torch.as_tensor(data.masks[i], dtype=torch.bool)
        fills = {"black": x.min(), "mean": x.mean()}
        with torch.no_grad():
            p = torch.softmax(model(x), -1)[0, int(data.labels[i])]
            for fill, value in fills.items():
                filled = x.clone()
                filled[0][:, inside] = value
                expected = float(p - torch.softmax(model(filled), -1)[0, int(data.labels[i])])
                stored = {r[f"fill_drop_{fill}"] for r in table.to_pylist() if r["image_index"] == i}
                assert len(stored) == 1 and stored.pop() == pytest.approx(expected, abs=1e-5)


def test_parts_computed_side_by_side_equal_those_computed_one_by_one(tiny, tmp_path):
    """jobs=2: two spawned processes on one torch thread each give the rows of the one-thread run, and the
    run's wall time counts overlapping parts once."""
    caught = _run(TINY, tmp_path, jobs=2)
    assert not [w for w in caught if "could not run" in str(w.message)]
    ours, meta, wall = read_rows(tmp_path)
    theirs, _, _ = read_rows(tiny)

    def rows(table):
        return sorted(
            (tuple((k, v) for k, v in r.items() if k != "seconds") for r in table.to_pylist()),
            key=lambda r: tuple(str(v) for _, v in r),
        )

    assert rows(ours) == rows(theirs)
    assert meta["jobs"] == 2 and meta["torch_threads"] == 1
    seconds = sum(float(pq.read_schema(p).metadata[b"seconds"]) for p in (tmp_path / "parts").glob("*.parquet"))
    assert 0 < wall <= seconds + 0.01


def test_covered_counts_overlapping_intervals_once():
    from camscope.metaeval.runner import covered

    assert covered([]) == 0
    assert covered([(0.0, 2.0), (1.0, 3.0), (5.0, 6.0), (5.5, 5.8)]) == pytest.approx(4.0)
    assert covered([(2.0, 3.0), (0.0, 10.0)]) == pytest.approx(10.0)


def test_resume_computes_nothing_and_other_settings_are_refused(tiny):
    parts = sorted((tiny / "parts").glob("*.parquet"))
    assert len(parts) == 2
    stamps = [p.stat().st_mtime_ns for p in parts]
    run_metaeval(TINY, tiny, progress=False)
    assert [p.stat().st_mtime_ns for p in parts] == stamps
    other = MetaevalConfig(**{**TINY.__dict__, "images": 6})
    with pytest.raises(InputError, match="other settings"):
        run_metaeval(other, tiny, progress=False)


def test_summary_outputs_and_known_answer(tiny):
    table, meta, seconds = read_rows(tiny)
    summary = summarize(table, meta["settings"], seconds)
    by_column = {c.column: c for c in summary.columns}
    assert by_column["energy_pointing"].is_ground_truth and not by_column["deletion_auc"].is_ground_truth
    assert by_column["energy_pointing"].models[0].discriminates is True
    written = write_outputs(summary, tiny)
    assert {p.name for p in written} == {SUMMARY_FILE, TABLE_FILE, PLOT_FILE}
    assert (tiny / PLOT_FILE).read_bytes()[:4] == b"\x89PNG"
    from camscope.report.metaeval import metaeval_section

    html = metaeval_section(tiny)
    assert "deletion_auc" in html and "data:image/png;base64" in html


@pytest.mark.parametrize(("setting", "condition"), [("input_noise", "input"), ("model_noise", "model")])
def test_a_prediction_flipped_by_the_minor_perturbation_is_flagged_and_warned(
    tmp_path, torch_threads, setting, condition
):
    """A "minor" perturbation too large for the model: its flipped images are flagged, warned and left out."""
    config = MetaevalConfig(**{**TINY.__dict__, "images": 2, "metrics": ("energy_pointing",), setting: 3.0})
    with torch_threads(1):
        caught = _run(config, tmp_path)
    assert any(f"the {condition!r} perturbation flipped the prediction" in str(w.message) for w in caught)
    table, meta, _ = read_rows(tmp_path)
    rows = table.to_pylist()
    flipped = [r for r in rows if r["flag"] == FLIPPED]
    assert flipped and {r["condition"] for r in flipped} == {condition}
    clean = {r["image_index"]: r["predicted"] for r in rows if r["condition"] == "clean"}
    assert all(r["predicted"] != clean[r["image_index"]] for r in flipped)
    summary = summarize(table, meta["settings"])
    assert summary.flipped["mini_resnet"][condition] == len({r["image_index"] for r in flipped})


def _refuses(maps, ground_truth):
    raise MetricInputError("this metric needs boxes drawn by a person, which generated scenes do not have")


@pytest.fixture
def refusing_metric():
    register_metric(
        "needs_human_boxes", _refuses, [Column("human_box_score", True)], needs_ground_truth=True, description="test"
    )
    yield "needs_human_boxes"
    unregister_metric("needs_human_boxes")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_metric_asking_for_ground_truth_it_cannot_have_gives_flagged_rows(
    tmp_path, refusing_metric, torch_threads, jobs
):
    """With jobs=2 the metric, registered in this process only, is unknown to the spawned workers: its parts
    are computed here instead, with the same rows."""
    config = MetaevalConfig(**{**TINY.__dict__, "images": 4, "metrics": ("energy_pointing", refusing_metric)})
    with torch_threads(1):
        caught = _run(config, tmp_path, jobs)
    assert len(list((tmp_path / "parts").glob("*.parquet"))) == 2
    assert any("needs_human_boxes could not run" in str(w.message) for w in caught)
    rows = read_rows(tmp_path)[0].to_pylist()
    refused = [r for r in rows if r["metric"] == refusing_metric]
    assert refused and all(r["status"] == "skipped" and np.isnan(r["value"]) for r in refused)
    assert all("drawn by a person" in r["flag"] for r in refused)
    assert all(r["status"] == "ok" for r in rows if r["metric"] == "energy_pointing")


def test_an_image_without_ground_truth_is_flagged_not_scored(tmp_path, monkeypatch, torch_threads):
    real = runner_module.scenes

    def one_empty(config):
        data = real(config)
        data.masks[0] = False
        return data

    monkeypatch.setattr(runner_module, "scenes", one_empty)
    config = MetaevalConfig(**{**TINY.__dict__, "images": 2, "metrics": ("energy_pointing",)})
    with torch_threads(1):
        caught = _run(config, tmp_path)
    assert any("empty object mask" in str(w.message) for w in caught)
    rows = read_rows(tmp_path)[0].to_pylist()
    first = [r for r in rows if r["image_index"] == 0]
    assert all(r["flag"] == NO_GROUND_TRUTH and r["status"] == "skipped" for r in first if r["condition"] != "input")
    assert all(r["status"] == "ok" for r in rows if r["image_index"] == 1)


def test_a_re_explaining_metric_scores_each_map_with_the_method_that_made_it(tmp_path, torch_threads):
    from camscope.data.synthetic import to_input
    from camscope.metrics import get_metric
    from camscope.models import get_spec, load_model

    params = {"max_sensitivity": {"nr_samples": 2, "seed": 0}}
    config = MetaevalConfig(**{**TINY.__dict__, "images": 2, "metrics": ("max_sensitivity",), "metric_params": params})
    with torch_threads(1):
        _run(config, tmp_path)
        rows = [r for r in read_rows(tmp_path)[0].to_pylist() if r["column"] == "max_sensitivity"]
        references = [r for r in rows if r["method"] in ("oracle", "inverse")]
        assert references and all(r["status"] == "skipped" and r["flag"] == NO_METHOD for r in references)
        data = runner_module.scenes(config)
        spec, model = get_spec("mini_resnet"), load_model("mini_resnet").eval()
        x = to_input(data.images, tuple(spec.mean), tuple(spec.std))
        for method in ("gradcam", "randomcam"):
            ours = {r["image_index"]: r for r in rows if r["method"] == method and r["condition"] == "clean"}
            assert all(r["status"] == "ok" for r in ours.values())
            maps = runner_module.method_maps(runner_module.applicable_cams(model, spec, (method,)), x, data.labels)
            direct = get_metric("max_sensitivity")(
                model,
                x,
                maps[method],
                data.labels.tolist(),
                explain_func=method,
                batch_size=128,
                **params["max_sensitivity"],
            ).summary()["max_sensitivity"]
            np.testing.assert_allclose([ours[i]["value"] for i in range(2)], direct, rtol=1e-4)  # float32 maps


def test_cli_runs_and_refuses_an_unknown_metric(tmp_path, capsys):
    from camscope.cli import main

    out = tmp_path / "me"
    args = ["metaeval", "--models", "mini_resnet", "--images", "2", "--methods", "gradcam,randomcam"]
    assert (
        main([*args, "--metrics", "energy_pointing,pointing", "--out", str(out), "--no-progress", "--bootstrap", "20"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "| pointing |" in printed and (out / TABLE_FILE).is_file()
    assert pq.read_table(next((out / "parts").glob("*.parquet"))).num_rows > 0
    assert main([*args, "--metrics", "nosuchmetric", "--out", str(tmp_path / "x")]) == 2
    assert "nosuchmetric" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--images", "1"], "at least 2 images"), (["--bootstrap", "3"], "at least 10"), (["--jobs", "0"], "jobs must")],
)
def test_cli_bad_settings_are_one_line_errors(tmp_path, capsys, option, message):
    from camscope.cli import main

    assert main(["metaeval", "--out", str(tmp_path / "x"), *option]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x" / "parts").exists()
