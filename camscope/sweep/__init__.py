"""Experiments at scale: models × methods × images × metrics → a resumable Parquet results store.

::

    config = load_config("sweep.toml")          # validated as a whole; ConfigError lists every problem
    result = run_sweep(config, engine="local")   # or engine="ray"; resume=True continues a killed run
    table = ResultsStore(config.output).read()   # one row per (image, model, method, target, metric)
"""

from camscope.sweep.config import ConfigError, ModelEntry, SweepConfig, load_config, parse_config
from camscope.sweep.runner import SweepResult, run_sweep
from camscope.sweep.store import ResultsStore, StoreError
from camscope.sweep.tasks import Task, make_tasks

__all__ = [
    "ConfigError",
    "ModelEntry",
    "ResultsStore",
    "StoreError",
    "SweepConfig",
    "SweepResult",
    "Task",
    "load_config",
    "make_tasks",
    "parse_config",
    "run_sweep",
]
