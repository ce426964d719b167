"""Meta-evaluation: how far each registered metric can be trusted on a task whose answer is known, and what
it costs.

A *consumer* of the metric registry and the generator's ground truth, not a second metric implementation:
every registered metric is called through :func:`camscope.metrics.get_metric` on the maps of every method,
RandomCAM and two reference maps (the true object mask and its inverse). See :mod:`.runner` (computing and
storing scored rows, resumable), :mod:`.summary` (agreement, discrimination, consistency, cost, findings)
and :mod:`.stats` (Kendall τ, bootstrap, MetaQuantus's consistency scores).
"""

from __future__ import annotations

from camscope.metaeval.config import PRESETS, MetaevalConfig, preset
from camscope.metaeval.runner import read_rows, run_metaeval
from camscope.metaeval.summary import Summary, summarize, write_outputs

__all__ = ["PRESETS", "MetaevalConfig", "Summary", "preset", "read_rows", "run_metaeval", "summarize", "write_outputs"]
