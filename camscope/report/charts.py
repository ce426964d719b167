"""The report's charts, as PNG bytes: group comparisons with confidence intervals, and mean curves.

Drawn on matplotlib's Agg canvas (no display, no pyplot state), at a modest dpi so the report stays
a few megabytes even when every figure is inlined.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from camscope.core.targets import CLASS_PROBABILITY
from camscope.metrics.registry import higher_is_better
from camscope.report.stats import Estimate
from camscope.viz import plot_curves

DPI = 80
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


def to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def comparison_chart(
    title: str,
    groups: Sequence[str],
    methods: Sequence[str],
    metrics: Sequence[str],
    values: dict[tuple[str, str, str], Estimate],
) -> bytes:
    """One panel per metric: for each method, a bar per group (mean, 95 % CI) — e.g. supervised vs SSL."""
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    figure = Figure(figsize=(4.2 * cols, 3.0 * rows + 0.4))
    figure.suptitle(title)
    width = 0.8 / max(1, len(groups))
    x = np.arange(len(methods))
    for k, metric in enumerate(metrics):
        ax = figure.add_subplot(rows, cols, k + 1)
        for g, group in enumerate(groups):
            est = [values.get((group, m, metric)) for m in methods]
            heights = [e.mean if e else np.nan for e in est]
            errors = [e.half_width if e and not math.isnan(e.half_width) else 0.0 for e in est]
            ax.bar(
                x + (g - (len(groups) - 1) / 2) * width,
                heights,
                width,
                yerr=errors,
                capsize=2,
                label=group,
                color=COLOURS[g % len(COLOURS)],
            )
        arrow = "↑" if higher_is_better(metric) else "↓"
        ax.set_title(f"{metric} ({arrow} better)", fontsize=9)
        ax.set_xticks(x, methods, rotation=30, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7)
    figure.tight_layout()
    return to_png(figure)


def curves_chart(
    title: str, curves: dict[str, tuple[list[float], np.ndarray]], xlabel: str, ylabel: str = CLASS_PROBABILITY
) -> bytes:
    """Mean curve per method (``curves[method] = (x, mean y)``), AUC in the legend; ``ylabel``: what the
    curves score (:func:`camscope.core.targets.score_name`)."""
    figure = plot_curves(
        {m: (np.asarray(x), np.asarray(y)) for m, (x, y) in curves.items()},
        title=title,
        xlabel=xlabel,
        ylabel=ylabel,
    )
    return to_png(figure)
