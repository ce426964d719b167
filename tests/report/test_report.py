"""The HTML report: self-contained, complete, and rendering in headless Chromium without errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from camscope.cli import main
from camscope.report import build_report
from camscope.report.stats import best, estimate
from camscope.sweep import ResultsStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(results: Path) -> Path:
    return build_report(results)


def test_report_is_self_contained_and_complete(report: Path, results: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the report must not fetch anything"
    assert "<link" not in page and "@import" not in page
    for section in ("models", "summary", "tables", "curves", "grid", "heads", "failures", "metadata"):
        assert f'id="{section}"' in page
    images = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    table = ResultsStore(results).read()
    models = sorted(set(table["model"].to_pylist()))
    # grid: 2 readable report images x models x (input + 2 methods); charts: 2 comparisons + curves per model and
    # metric; per-head attention grids: 2 images x the one token model (mini_deit)
    assert len(images) == 2 * len(models) * 3 + 2 + 2 * len(models) + 2
    assert page.count("attention heads") == 2 and "mini_deit attention heads img1.png" in page
    assert "RANDOM WEIGHTS" in page
    assert "broken.png" in page and "cannot load image" in page
    for metric in ("deletion_auc", "insertion_auc", "pointing"):
        assert f"<h3>{metric}</h3>" in page
    assert page.count("★") >= len(models) * 3
    assert "config hash" in page and "torch version" in page


def test_models_section_counts_each_image_once_per_model() -> None:
    import pyarrow as pa

    from camscope.report.html import _models

    rows = [  # two metric rows per image must not count twice; unlabelled images are not scored
        {"model": "a", "image_id": i, "label": label, "predicted": pred, "family": "F", "training": "t", "kind": "cnn"}
        for i, label, pred in (("x", 1, 1), ("x", 1, 1), ("y", 2, 3), ("z", None, 3))
    ] + [{"model": "b", "image_id": "x", "label": None, "predicted": 0, "family": "G", "training": "t", "kind": "cnn"}]
    page = _models(pa.Table.from_pylist(rows), ["a", "b"])
    assert "1 / 2 (50 %)" in page
    assert page.count("<tr>") == 3 and "F · t · cnn" in page and "– (no labelled images)" in page
    # a label-free sweep: labelled images, but the backbone predicts no class; the cell says why it is empty
    free = [{**row, "predicted": None} for row in rows]
    page = _models(pa.Table.from_pylist(free), ["a", "b"])
    assert page.count("– (backbone: no classes to score)") == 2 and "%" not in page


def test_models_section_shows_each_minis_trained_accuracy_against_its_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 11: the Models section shows every mini at (or below) its target, from the shipped record; a
    random-weights run never borrows the record's figure, and a model outside the mini zoo has none."""
    import pyarrow as pa

    from camscope.models.mini import mini_record
    from camscope.report import html as report_html

    def row(model: str, random_weights: bool) -> dict:
        return {"model": model, "image_id": "x", "label": 1, "predicted": 1, "family": "F", "training": "t",
                "kind": "k", "random_weights": random_weights}  # fmt: skip

    table = pa.Table.from_pylist([row("mini_cait", False), row("mini_dino_resnet", True), row("resnet50", False)])
    random = report_html._random_weights({}, table)  # the one list the report's RANDOM WEIGHTS banner names
    assert random == ["mini_dino_resnet"]
    page = report_html._models(table, ["mini_cait", "mini_dino_resnet", "resnet50"], random)
    cait = mini_record("mini_cait")["test_accuracy"]
    mark = "✔" if cait >= 95 else "✘ below target"  # the supervised target, stated here independently
    assert f"{cait:.1f} % (target ≥ 95 %) {mark}" in page
    dino = mini_record("mini_dino_resnet")["test_accuracy"]
    assert "– (random weights: untrained)" in page and f"{dino:.1f} %" not in page
    assert page.count("<td>–</td>") == 1  # resnet50: not a mini, no record
    monkeypatch.setattr(report_html, "trained_accuracy", lambda name: (70.0, 80.0))
    page = report_html._models(table[:1], ["mini_cait"], random)
    assert "70.0 % (target ≥ 80 %) ✘ below target: explains a weaker classifier" in page


def test_comparisons_keep_a_third_training_group_out_of_both_sides() -> None:
    """A generator-paired mini is neither supervised nor self-supervised: named, never pooled into a side."""
    import pyarrow as pa

    from camscope.report.html import _comparisons

    values = {"supervised": (0.9, 0.7), "self-supervised": (0.5, 0.3), "generator-paired": (0.1, 0.0)}
    rows = [
        {"training": t, "kind": "cnn", "method": "gradcam", "metric": "pointing", "value": v, "status": "ok"}
        for t, pair in values.items()
        for v in pair
    ]
    page = _comparisons(pa.Table.from_pylist(rows), ["gradcam"], ["pointing"])
    assert "Not in either group: generator-paired models." in page
    supervised_vs_ssl = page.split("<h3>")[1]
    assert "0.80" in supervised_vs_ssl and "0.40" in supervised_vs_ssl  # the two sides' means
    assert "0.05" not in supervised_vs_ssl and "<th>generator-paired</th>" not in supervised_vs_ssl


def test_confidence_interval_and_best_marking() -> None:
    e = estimate(0.5, 0.1, 10)
    assert e.half_width == pytest.approx(2.2621571628 * 0.1 / 10**0.5)
    assert estimate(0.5, None, 1).half_width != estimate(0.5, None, 1).half_width  # NaN for one value
    assert best({"a": 0.2, "b": 0.1, "c": 0.1}, "deletion_auc") == {"b", "c"}
    assert best({"a": 0.2, "b": 0.1}, "insertion_auc") == {"a"}
    assert best({"a": 0.2}, "insertion_auc") == set()


def test_cli_report(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(results), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.stat().st_size > 10_000
    assert main(["report", str(tmp_path)]) == 2
    assert "not a camscope results folder" in capsys.readouterr().err


def _chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    dom = _chromium(report, tmp_path / "profile1", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stdout[:500]
    total = int(re.search(r'data-images-total="(\d+)"', body.group()).group(1))
    rendered = int(re.search(r'data-images-rendered="(\d+)"', body.group()).group(1))
    assert total > 0 and rendered == total
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console

    shot = tmp_path / "report.png"
    run = _chromium(report, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1300,2000")
    assert run.returncode == 0 and shot.stat().st_size > 20_000
    print(f"screenshot: {shot}")


def test_a_classifier_sweeps_curves_score_the_target_probability(results: Path, tmp_path: Path, curve_labels) -> None:
    build_report(results, tmp_path / "r.html")
    assert curve_labels and set(curve_labels) == {"target probability"}
