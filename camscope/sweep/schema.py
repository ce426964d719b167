"""What the results store holds: the row schema, and a finished task's output as the store receives it.

The store, the worker (which produces rows) and the report (which reads them) all take the format
from here, so none of them depends on another for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from camscope.sweep.tasks import Task

SCHEMA = pa.schema(
    [
        ("task", pa.string()),
        ("image_id", pa.string()),
        ("image_index", pa.int64()),
        ("model", pa.string()),
        ("family", pa.string()),
        ("training", pa.string()),
        ("ssl_method", pa.string()),
        ("kind", pa.string()),
        ("random_weights", pa.bool_()),
        ("method", pa.string()),
        ("label", pa.int64()),
        ("target", pa.int64()),
        ("predicted", pa.int64()),
        ("target_prob", pa.float64()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("curve_x", pa.list_(pa.float64())),
        ("curve", pa.list_(pa.float64())),
        ("status", pa.string()),
        ("error", pa.string()),
        ("cam_seconds", pa.float64()),
        ("warnings", pa.string()),  # "; "-joined CamscopeWarnings about this image's map (None: none)
    ]
)


@dataclass
class TaskOutput:
    """What a task produced: its rows (see :data:`SCHEMA`) and the arrays of its maps file."""

    task: Task
    rows: pa.Table
    maps: dict[str, np.ndarray]
    seconds: float
    failed: int

    @property
    def images(self) -> int:
        return len(self.task.indices)
