"""Meta-evaluation: how far each registered metric can be trusted on a task whose answer is known, and what
it costs.

A *consumer* of the metric registry and the generator's ground truth, not a second metric implementation:
every registered metric is called through :func:`camscope.metrics.get_metric` on the maps of every method,
RandomCAM and two reference maps (the true object mask and its inverse). See :mod:`.runner` (computing and
storing scored rows, resumable), :mod:`.summary` (agreement, discrimination, consistency, cost, findings)
and :mod:`.stats` (Kendall τ, bootstrap, MetaQuantus's consistency scores).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from camscope.metaeval.config import PRESETS, MetaevalConfig, preset

# The runner and the summary need pyarrow: they load on first use, so the CLI's parser stays light.
_LAZY = {
    "read_rows": "camscope.metaeval.runner",
    "run_metaeval": "camscope.metaeval.runner",
    "Summary": "camscope.metaeval.summary",
    "summarize": "camscope.metaeval.summary",
    "write_outputs": "camscope.metaeval.summary",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'camscope.metaeval' has no attribute {name!r}")


__all__ = ["PRESETS", "MetaevalConfig", "Summary", "preset", "read_rows", "run_metaeval", "summarize", "write_outputs"]
