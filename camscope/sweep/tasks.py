"""Tasks: the unit of work that is computed, written and resumed — one (model, method, image shard).

Why this grain: a model is expensive to load, so tasks are ordered model → shard → method and an
engine keeps one model (and one shard's preprocessed inputs) alive across consecutive tasks; a shard is
small enough that a killed sweep loses at most one shard of one method per worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from camscope.sweep.config import SweepConfig

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


@dataclass(frozen=True)
class Task:
    """Images ``indices`` (positions in the sweep's image list) × one model × one method."""

    model: str
    method: str
    shard: int
    indices: tuple[int, ...]

    @property
    def id(self) -> str:
        """File-name-safe and unique within a sweep: the store's key for this task."""
        return f"{_UNSAFE.sub('_', self.model)}__{_UNSAFE.sub('_', self.method)}__{self.shard:05d}"


def make_tasks(config: SweepConfig, n_images: int) -> list[Task]:
    """Every task of the sweep, in execution order (model → shard → method)."""
    shards = [tuple(range(s, min(s + config.shard_size, n_images))) for s in range(0, n_images, config.shard_size)]
    return [
        Task(model.name, method, k, shard)
        for model in config.models
        for k, shard in enumerate(shards)
        for method in config.methods
    ]
