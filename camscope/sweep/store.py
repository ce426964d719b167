"""The results store: a folder of per-task Parquet files, written atomically, read as one table.

Layout::

    RESULTS/run.json                 run metadata: config, its hash, versions, device, engine
    RESULTS/parts/<task>.parquet     the rows of one finished task (see camscope.sweep.schema.SCHEMA)
    RESULTS/maps/<task>.npz          that task's maps (uint8, compressed) and, for the report, the
                                     model's view of the first few images

    RESULTS/.lock                    held (flock) by the sweep writing the folder; says who it is
    RESULTS/**/*.corrupt             files that could not be read, moved aside (see :meth:`heal`)

Why one file per task, each written to a temporary name and renamed: a rename is atomic, so a file
under its final name is always complete. The Parquet file is the task's commit marker and is written
last (after its maps), so after any kill — even SIGKILL between the two writes — a task is either
fully present or absent: resuming recomputes exactly the absent ones, and no row is lost or doubled.

What a rename cannot prevent — a disk that fills up, a copy that truncates, bit rot — is healed: a part,
maps file or ``run.json`` that does not read is moved aside as ``*.corrupt`` (never deleted: it may be
evidence) and its task is recomputed on ``--resume``; ``report`` skips it with a warning. Temporary
files carry the writer's process id, so a run only ever removes its own or a dead writer's leftovers,
and one sweep at a time holds the folder's lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from camscope.core.errors import CamscopeError
from camscope.sweep.schema import SCHEMA, TaskOutput

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
_TMP_PID = re.compile(r"\.pid(\d+)-[^.]*\.tmp$")


class StoreError(CamscopeError):
    """A results folder that cannot be used: missing, not a camscope store, or from another config."""


class StoreLockedError(StoreError):
    """Another live sweep holds the results folder's lock."""


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then rename to ``path``: readers never see a partial file.

    The temporary name carries this process's id (``.NAME.pidPID-XXXX.tmp``) so that cleaning up
    after a killed run never touches another live writer's file. SIGINT / SIGTERM arriving meanwhile are
    held until the file is in place (:func:`interrupts_held`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.pid{os.getpid()}-", suffix=".tmp")
    os.close(fd)
    try:
        with interrupts_held():
            write(Path(tmp))
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """SIGINT / SIGTERM arriving in the block are delivered to their handlers when it ends.

    Why: an interrupt raised inside a library's write (``np.savez_compressed`` in ``zipfile``) can meet that
    library's cleanup, which then raises its own error (an open zip handle) in place of the
    ``KeyboardInterrupt``: the run ended with a traceback and status 1 instead of its interrupt line and 130.
    Held, the write finishes (milliseconds) and the interrupt ends the run as usual. Only the main thread can
    set handlers; elsewhere the block runs as it is.
    """
    previous = {sig: signal.getsignal(sig) for sig in HELD_SIGNALS}
    if threading.current_thread() is not threading.main_thread() or None in previous.values():
        yield  # None: a handler set outside Python, which could not be put back
        return
    held: list[tuple[int, Any]] = []
    for sig in HELD_SIGNALS:
        signal.signal(sig, lambda signum, frame: held.append((signum, frame)))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum, frame in held[:1]:  # one interrupt ends the run; a second adds nothing
            handler = previous[signal.Signals(signum)]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


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
        path = self.root / RUN_FILE
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"{self.root} is not a camscope results folder (no {RUN_FILE})") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise StoreError(f"{path} is unreadable ({' '.join(str(exc).split())})") from None
        if not isinstance(meta, dict):
            raise StoreError(f"{path} is unreadable (not a JSON object)")
        return meta

    def write_metadata(self, meta: dict[str, Any]) -> None:
        text = json.dumps(meta, indent=2, sort_keys=True, default=str)
        atomic_write(self.root / RUN_FILE, lambda p: p.write_text(text))

    # ------------------------------------------------------------------ tasks
    def done(self) -> set[str]:
        """Ids of the finished tasks (those whose Parquet file is in place)."""
        if not self.parts.is_dir():
            return set()
        return {p.stem for p in self.parts.glob("*.parquet")}

    def part_hashes(self) -> set[str]:
        """The config hashes recorded in the readable parts' Parquet metadata."""
        hashes = set()
        for part in sorted(self.parts.glob("*.parquet")) if self.parts.is_dir() else []:
            try:
                meta = pq.read_schema(part).metadata or {}
            except Exception:  # a damaged part is healed separately
                continue
            if b"config_hash" in meta:
                hashes.add(meta[b"config_hash"].decode())
        return hashes

    def clean_temporary(self) -> int:
        """Remove temporary files a killed run left behind (never a live writer's); returns how many."""
        leftovers = []
        for p in (p for d in (self.parts, self.maps_dir, self.root) if d.is_dir() for p in d.glob(".*.tmp")):
            owner = _TMP_PID.search(p.name)
            if owner is None or not _pid_alive(int(owner.group(1))) or int(owner.group(1)) == os.getpid():
                leftovers.append(p)
        for p in leftovers:
            p.unlink(missing_ok=True)
        return len(leftovers)

    # ------------------------------------------------------------------ healing
    def move_aside(self, path: Path) -> Path:
        """Rename an unreadable file to ``NAME.corrupt`` (``NAME.corrupt.2`` … if taken); returns the new path."""
        target, k = path.with_name(path.name + ".corrupt"), 2
        while target.exists():
            target, k = path.with_name(f"{path.name}.corrupt.{k}"), k + 1
        os.replace(path, target)
        return target

    def unreadable(self) -> list[Path]:
        """Parts whose Parquet footer or rows do not read, and maps files that are not valid archives."""
        bad = []
        for part in sorted(self.parts.glob("*.parquet")) if self.parts.is_dir() else []:
            if _read_part(part) is None:
                bad.append(part)
        for maps in sorted(self.maps_dir.glob("*.npz")) if self.maps_dir.is_dir() else []:
            if not _npz_ok(maps):
                bad.append(maps)
        return bad

    def heal(self) -> list[tuple[Path, Path]]:
        """Move every unreadable part or maps file aside, with its task's other file, so the task reruns.

        Returns (original, moved-to) pairs. A task's maps and rows belong together: if either is
        damaged both go, and ``--resume`` recomputes the task from scratch.
        """
        moved = []
        for path in self.unreadable():
            task = path.stem
            for sibling in (self.parts / f"{task}.parquet", self.maps_dir / f"{task}.npz"):
                if sibling.is_file():
                    moved.append((sibling, self.move_aside(sibling)))
        return moved

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
    def read(self, columns: Iterable[str] | None = None, skipped: list[Path] | None = None) -> pa.Table:
        """Every stored row as one table (empty, with the schema, when nothing is stored yet).

        Parts that do not read are left out and appended to ``skipped`` when it is given; without it,
        an unreadable part is a :class:`StoreError` naming it (a sweep must never sum up silently less).
        """
        files = sorted(self.parts.glob("*.parquet")) if self.parts.is_dir() else []
        cols = list(columns) if columns is not None else None
        schema = SCHEMA if cols is None else pa.schema([SCHEMA.field(c) for c in cols])
        tables = []
        for f in files:
            table = _read_part(f)
            if table is None:
                if skipped is None:
                    raise StoreError(f"{f} is unreadable; run the sweep again with --resume to recompute it")
                skipped.append(f)
                continue
            # parts written before a column existed get it as nulls
            tables.append(_conform(table, SCHEMA).select(schema.names))
        if not tables:
            return schema.empty_table()
        return pa.concat_tables(tables)

    def maps(self, task_id: str) -> dict[str, np.ndarray]:
        """The arrays of one task's maps file (``ids``, ``maps`` and maybe ``view_ids``, ``views``).

        An unreadable file raises :class:`StoreError` naming it.
        """
        path = self.maps_dir / f"{task_id}.npz"
        if not path.is_file():
            return {}
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except Exception as exc:  # zip, zlib and format errors of a damaged file
            raise StoreError(f"{path} is unreadable ({type(exc).__name__}); rerun with --resume") from None

    # ------------------------------------------------------------------ the lock
    def lock(self) -> StoreLock:
        """Take the folder's exclusive lock (see :class:`StoreLock`)."""
        return StoreLock(self.root)


class StoreLock:
    """An exclusive ``flock`` on ``RESULTS/.lock``, which says who holds it (pid, host, start, command).

    The kernel releases a flock when its holder dies, however it dies, so a lock file left by a killed
    sweep is never an obstacle: the next sweep takes it over (and says so). A second live sweep on the
    same folder gets :class:`StoreLockedError` naming the holder.
    """

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_FILE
        self._file: IO[str] | None = None
        self.took_over: dict[str, Any] | None = None

    def __enter__(self) -> StoreLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")  # held for the life of the lock
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(self.path)
            f.close()
            who = (
                f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('started')} "
                f"({holder.get('command')})"
                if holder
                else "another process"
            )
            raise StoreLockedError(
                f"{self.path.parent} is in use by another sweep: {who}; wait for it or choose another output"
            ) from None
        previous = _holder(self.path)
        if previous and previous.get("pid") != os.getpid():
            self.took_over = previous
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv)[:200],
        }
        f.seek(0)
        f.truncate()
        f.write(json.dumps(info))
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _holder(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _read_part(path: Path) -> pa.Table | None:
    """The rows of one part file, or None when it does not read (truncated, not Parquet, wrong columns)."""
    try:
        table = pq.read_table(path).replace_schema_metadata(None)
    except Exception:  # pyarrow raises ArrowInvalid, OSError, ... on damaged files
        return None
    required = set(SCHEMA.names) - {"warnings"}
    return table if required <= set(table.column_names) else None


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table


def _npz_ok(path: Path) -> bool:
    """True if ``path`` is a complete zip archive whose members all pass their CRC check."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
