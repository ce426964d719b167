"""Engines run tasks and hand back their outputs, in any order; the runner stores them.

Every engine calls the same task function (:class:`camscope.sweep.worker.TaskWorker`), so the engine
chooses only *where* a task runs, never what it computes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from camscope.errors import CamscopeError
from camscope.sweep.config import SweepConfig
from camscope.sweep.tasks import Task
from camscope.sweep.worker import TaskOutput

ENGINES = ("local", "ray")


class Engine(Protocol):
    name: str
    device: str

    def run(self, tasks: Sequence[Task]) -> Iterator[TaskOutput]: ...

    def close(self) -> None: ...


def make_engine(name: str, config: SweepConfig, **options: Any) -> Engine:
    """The engine called ``name`` ("local" or "ray") for ``config``."""
    if name == "local":
        from camscope.sweep.engines.local import LocalEngine

        return LocalEngine(config)
    if name == "ray":
        from camscope.sweep.engines.ray import RayEngine

        return RayEngine(config, **options)
    raise CamscopeError(f"unknown engine {name!r}: use one of {', '.join(ENGINES)}")
