"""Output paths of the commands: checked before any work, named without collisions.

Why before: a sweep or an evaluation can take minutes; finding out afterwards that ``--out`` lies under
an existing file (or in a read-only folder) loses the work and ends in a traceback. Every check here
raises :class:`~camscope.core.errors.OutputError` with one line naming the path and the problem.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from camscope.core.errors import OutputError


def nonnegative_int(text: str) -> int:
    """argparse type for class indices: ``--target -1`` is refused, not read as "the last class"."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a class index (an integer >= 0)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"class indices start at 0, got {value}")
    return value


def _existing_ancestor(path: Path) -> Path:
    for parent in [path, *path.parents]:
        if parent.exists():
            return parent
    return Path(".")  # pragma: no cover - the root always exists


def check_folder(path: str | os.PathLike[str], what: str, shown: str | os.PathLike[str] | None = None) -> Path:
    """``path`` is, or can be made, a writable folder (``shown``: the path the user gave, for messages)."""
    folder = Path(path)
    label = Path(shown) if shown is not None else folder
    base = _existing_ancestor(folder.absolute())
    if not base.is_dir():
        raise OutputError(f"{what} {label}: {base} is a file, not a folder; choose another path")
    try:  # the honest test (permissions, read-only file systems, root): write a file there and drop it
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"{what} {label}: cannot write in {base} ({reason}); choose another path") from None
    return folder


def check_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` can be written as a file (its folder exists or can be made, and it is not a folder)."""
    file = Path(path)
    if file.is_dir():
        raise OutputError(f"{what} {file} is a folder; give a file name")
    if file.exists() and not os.access(file, os.W_OK):
        raise OutputError(f"{what} {file} exists and is not writable; choose another path")
    check_folder(file.parent, what, shown=file)
    return file


def unique_stems(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """A distinct name per input for output files: the stem, or the name with its suffix when stems
    collide (``cat.png``, ``cat.jpg`` → ``cat_png``, ``cat_jpg``), then a counter (``a/cat.png``, ``b/cat.png``)."""
    stems = [Path(p).stem for p in paths]
    names = [Path(p).name.replace(".", "_") if stems.count(s) > 1 else s for p, s in zip(paths, stems)]
    out: list[str] = []
    for name in names:
        candidate, k = name, 2
        while candidate in out:
            candidate, k = f"{name}_{k}", k + 1
        out.append(candidate)
    return out
