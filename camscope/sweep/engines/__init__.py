"""Engines run tasks and hand back their outputs, in any order; the runner stores them.

Every engine calls the same task function (:class:`camscope.sweep.worker.TaskWorker`), so the engine
chooses only *where* a task runs, never what it computes.

One thing besides the task decides the last bits of a number: torch's thread count per task. It
changes how matrix products split their sums, so float32 rounding differs, and near-tied map values can
swap places in a deletion/insertion order: AUCs then differ by up to ~2e-3 (the README gives the measurement).
Both engines take ``threads``; with the same count on both (``--threads 1``), every row is bit-identical.
Without it the local engine uses torch's default (every core) and a Ray actor its CPU share.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from camscope.core.errors import CamscopeError
from camscope.sweep.config import SweepConfig
from camscope.sweep.schema import TaskOutput
from camscope.sweep.tasks import Task

#: Engine name → "module:class"; a new engine is a module here and one line in this table. Classes are
#: imported on use, so Ray is loaded only by a sweep that asks for it.
ENGINES = {
    "local": "camscope.sweep.engines.local:LocalEngine",
    "ray": "camscope.sweep.engines.ray:RayEngine",
}


class Engine(Protocol):
    name: str
    device: str

    def run(self, tasks: Sequence[Task]) -> Iterator[TaskOutput]: ...

    def close(self) -> None: ...


def make_engine(name: str, config: SweepConfig, **options: Any) -> Engine:
    """The engine called ``name`` (see :data:`ENGINES`) for ``config``; ``options`` go to its constructor."""
    if name not in ENGINES:
        raise CamscopeError(f"unknown engine {name!r}: use one of {', '.join(ENGINES)}")
    module, cls = ENGINES[name].split(":")
    engine: Engine = getattr(importlib.import_module(module), cls)(config, **options)
    return engine
