"""The local engine: tasks one after another in this process, one model in memory at a time.

Tasks arrive ordered model → shard → method, and the worker keeps the current model, so each model
is loaded exactly once; torch uses every core of the machine for each batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from camscope.sweep.config import SweepConfig
from camscope.sweep.schema import TaskOutput
from camscope.sweep.tasks import Task
from camscope.sweep.worker import TaskWorker


class LocalEngine:
    """In-process engine (the default)."""

    name = "local"

    def __init__(self, config: SweepConfig) -> None:
        self.worker = TaskWorker(config)
        self.device = str(self.worker.device)

    def run(self, tasks: Sequence[Task]) -> Iterator[TaskOutput]:
        self.worker.plan(tasks)
        for task in tasks:
            yield self.worker.run(task)

    def close(self) -> None:
        self.worker.release()
