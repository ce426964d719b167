"""The results store: a folder of per-task Parquet files, written atomically, read as one table.

Layout::

    RESULTS/run.json                 run metadata: config, its hash, versions, device, engine
    RESULTS/parts/<task>.parquet     the rows of one finished task (see camscope.sweep.schema.SCHEMA)
    RESULTS/maps/<task>.npz          that task's maps (uint8, compressed) and, for the report, the
                                     model's view of the first few images

Why one file per task, each written to a temporary name and renamed: a rename is atomic, so a file
under its final name is always complete. The Parquet file is the task's commit marker and is written
last (after its maps), so after any kill — even SIGKILL between the two writes — a task is either
fully present or absent: resuming recomputes exactly the absent ones, and no row is lost or doubled.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from camscope.errors import CamscopeError
from camscope.sweep.schema import SCHEMA, TaskOutput

RUN_FILE = "run.json"


class StoreError(CamscopeError):
    """A results folder that cannot be used: missing, not a camscope store, or from another config."""


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then rename to ``path``: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultsStore:
    """Read and write one sweep's results folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.parts = self.root / "parts"
        self.maps_dir = self.root / "maps"

    # ------------------------------------------------------------------ run metadata
    @property
    def exists(self) -> bool:
        return (self.root / RUN_FILE).is_file()

    def metadata(self) -> dict[str, Any]:
        try:
            return json.loads((self.root / RUN_FILE).read_text())
        except FileNotFoundError:
            raise StoreError(f"{self.root} is not a camscope results folder (no {RUN_FILE})") from None

    def write_metadata(self, meta: dict[str, Any]) -> None:
        text = json.dumps(meta, indent=2, sort_keys=True, default=str)
        atomic_write(self.root / RUN_FILE, lambda p: p.write_text(text))

    # ------------------------------------------------------------------ tasks
    def done(self) -> set[str]:
        """Ids of the finished tasks (those whose Parquet file is in place)."""
        if not self.parts.is_dir():
            return set()
        return {p.stem for p in self.parts.glob("*.parquet")}

    def clean_temporary(self) -> int:
        """Remove temporary files a killed run left behind; returns how many."""
        leftovers = [p for d in (self.parts, self.maps_dir, self.root) if d.is_dir() for p in d.glob(".*.tmp")]
        for p in leftovers:
            p.unlink(missing_ok=True)
        return len(leftovers)

    def write(self, output: TaskOutput, metadata: dict[str, str] | None = None) -> None:
        """Store a finished task: maps first, then the rows (the commit)."""
        task_id = output.task.id
        if output.maps:
            atomic_write(self.maps_dir / f"{task_id}.npz", lambda p: _save_npz(p, output.maps))
        table = output.rows.replace_schema_metadata({k.encode(): str(v).encode() for k, v in (metadata or {}).items()})
        atomic_write(self.parts / f"{task_id}.parquet", lambda p: pq.write_table(table, p, compression="zstd"))

    def clear(self) -> None:
        """Remove every stored task (used by a fresh run over an old folder of the same sweep)."""
        for d in (self.parts, self.maps_dir):
            if d.is_dir():
                for p in d.iterdir():
                    p.unlink()

    # ------------------------------------------------------------------ reading
    def read(self, columns: Iterable[str] | None = None) -> pa.Table:
        """Every stored row as one table (empty, with the schema, when nothing is stored yet)."""
        files = sorted(self.parts.glob("*.parquet")) if self.parts.is_dir() else []
        cols = list(columns) if columns is not None else None
        if not files:
            schema = SCHEMA if cols is None else pa.schema([SCHEMA.field(c) for c in cols])
            return schema.empty_table()
        tables = [pq.read_table(f, columns=cols).replace_schema_metadata(None) for f in files]
        return pa.concat_tables(tables)

    def maps(self, task_id: str) -> dict[str, np.ndarray]:
        """The arrays of one task's maps file (``ids``, ``maps`` and maybe ``view_ids``, ``views``)."""
        path = self.maps_dir / f"{task_id}.npz"
        if not path.is_file():
            return {}
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
