"""The meta-evaluation's figure: per metric column, its agreement with the known answer on each model
(τ with its bootstrap interval; a filled marker where it puts oracle > random > inverse), and one panel of
trust against cost, so a user can pick a metric by both."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from camscope.metaeval.summary import Summary
from camscope.report.charts import to_png


def _short(model: str) -> str:
    return model.removeprefix("mini_")


def plot_png(summary: Summary) -> bytes:
    columns = summary.columns
    cols = max(1, min(4, len(columns)))
    rows = math.ceil(len(columns) / cols)
    # trust vs cost spans the last row, taller: with dozens of columns its labels need the room
    figure = Figure(figsize=(3.4 * cols, 2.7 * rows + 5.0))
    grid = figure.add_gridspec(rows + 1, cols, height_ratios=[1.0] * rows + [2.0])
    for k, result in enumerate(columns):
        ax = figure.add_subplot(grid[k // cols, k % cols])
        x = np.arange(len(result.models))
        for i, m in enumerate(result.models):
            lo, hi = m.tau.value - m.tau.low, m.tau.high - m.tau.value
            filled = bool(m.discriminates)
            ax.errorbar(
                [i],
                [m.tau.value],
                yerr=[[max(lo, 0.0)], [max(hi, 0.0)]],
                fmt="o",
                color="#1f77b4",
                mfc="#1f77b4" if filled else "white",
                ms=5,
                capsize=2,
            )
        if np.isfinite(result.tau.value):
            ax.axhspan(result.tau.low, result.tau.high, color="#ff7f0e", alpha=0.15, lw=0)
            ax.axhline(result.tau.value, color="#ff7f0e", lw=1)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xticks(x, [_short(m.model) for m in result.models], rotation=60, fontsize=7)
        arrow = "↑" if result.higher_is_better else "↓"
        title = f"{result.column} {arrow}" + (" (= known answer)" if result.is_ground_truth else "")
        ax.set_title(title, fontsize=9)
        if k % cols == 0:
            ax.set_ylabel("Kendall τ vs known answer", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    ax = figure.add_subplot(grid[rows, :])
    for k, result in enumerate(columns):
        if np.isfinite(result.seconds) and np.isfinite(result.tau.value) and result.seconds > 0:
            ax.errorbar(
                [result.seconds * 1000],
                [result.tau.value],
                yerr=[[max(result.tau.value - result.tau.low, 0.0)], [max(result.tau.high - result.tau.value, 0.0)]],
                fmt="s",
                ms=4,
                capsize=2,
            )
            ax.annotate(
                result.column,
                (result.seconds * 1000, result.tau.value),
                fontsize=7,
                xytext=(4, 3 if k % 2 else -9),  # alternate sides: columns of one metric share their cost
                textcoords="offset points",
            )
    ax.set_xscale("log")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("ms per image and map", fontsize=8)
    ax.set_title("trust vs cost", fontsize=9)
    ax.tick_params(labelsize=7)
    figure.suptitle(
        "Agreement with the known answer (dot: model, 95 % bootstrap CI; filled: oracle > random > inverse; "
        "band: mean over models)",
        fontsize=9,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.985))  # leave the top to the title
    return to_png(figure)
