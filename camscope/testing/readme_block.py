"""The mini zoo's README block: its markers, its accuracy table, and rewriting it in place.

The block is written by ``benchmarks/mini_zoo_report.py``; the test suite checks that the README holds
the table the shipped records give, so a retrained model cannot ship with a stale README.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camscope.models.mini import ACCURACY_TARGETS, MINI_MODELS, mini_record
from camscope.testing.markers import replace_block

BEGIN, END = "<!-- mini-zoo:begin (written by benchmarks/mini_zoo_report.py) -->", "<!-- mini-zoo:end -->"


def training_label(rec: dict[str, Any]) -> str:
    """ "supervised", or the method and the probe's labelled images ("MoCo v3 + linear probe (32k)")."""
    if not rec.get("ssl_method"):
        return str(rec["training"])
    probe = rec.get("probe_images")
    paired = rec.get("paired_views")
    views = f" on generator-paired views (same {paired})" if paired else ""
    return f"{rec['ssl_method']}{views} + linear probe" + (f" ({probe // 1024}k)" if probe else "")


def _steps(rec: dict[str, Any]) -> str:
    """``steps × batch``, with the earlier runs a warm restart continued (``train-mini --continue-from``)."""
    here = f"{rec['steps']} × {rec['config']['batch_size']}"
    return f"{here} (after {rec['prior_steps']} earlier steps)" if rec.get("prior_steps") else here


def accuracy_markdown() -> str:
    """The accuracy table, from the records beside the shipped weights."""
    lines = [
        "| model | family | training | params | test acc % | object removed % | steps × batch | train time | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in MINI_MODELS:
        rec = mini_record(name)
        target = ACCURACY_TARGETS[rec["training"]]
        mark = "✔" if rec["test_accuracy"] >= target else "✘"
        lines.append(
            f"| {name} | {rec['family']} | {training_label(rec)} | {rec['parameters'] / 1e3:.0f}k | "
            f"{rec['test_accuracy']:.1f} | {rec['counterfactual_accuracy']:.1f} | "
            f"{_steps(rec)} | {rec['train_seconds'] / 60:.0f} min | "
            f"≥ {target:.0f} {mark} |"
        )
    return "\n".join(lines)


def write_readme(block: str, readme: Path) -> None:
    """Replace the README's marked block (:func:`camscope.testing.markers.replace_block`)."""
    replace_block(readme, BEGIN, END, block)
