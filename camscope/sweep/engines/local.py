"""The local engine: tasks one after another in this process, one model in memory at a time.

Tasks arrive ordered model → shard → method, and the worker keeps the current model, so each model
is loaded exactly once. torch uses ``threads`` threads per batch (default: torch's own count, every core
of the machine); the count changes float rounding (see :mod:`camscope.sweep.engines`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from camscope.sweep.config import SweepConfig
from camscope.sweep.schema import TaskOutput
from camscope.sweep.tasks import Task
from camscope.sweep.worker import TaskWorker


class LocalEngine:
    """In-process engine (the default)."""

    name = "local"

    def __init__(self, config: SweepConfig, threads: int | None = None, **_: Any) -> None:
        self.worker = TaskWorker(config)
        self.threads = threads or torch.get_num_threads()
        self.device = f"{self.worker.device}, {self.threads} torch thread(s)"

    def run(self, tasks: Sequence[Task]) -> Iterator[TaskOutput]:
        self.worker.plan(tasks)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for task in tasks:
                yield self.worker.run(task)
        finally:
            torch.set_num_threads(before)

    def close(self) -> None:
        self.worker.release()
