"""Shipping a trained mini model into the zoo: the one step that writes into the source tree.

Why separate from training: a run writes only under the runs folder its user named, so training can
never change the installed package; putting a run's model into ``camscope/zoo_weights/`` of a source
checkout (to be committed) is a deliberate developer step, ``camscope train-mini --ship RUNS/NAME``.
"""

from __future__ import annotations

from pathlib import Path

from camscope.core.errors import InputError
from camscope_lab.records import better, copy_model, read_record


def source_zoo() -> Path:
    """``camscope/zoo_weights/`` of the source checkout this lab sits in (beside ``pyproject.toml``).

    An installed lab has no source tree to ship into; the caller must then name the folder.
    """
    root = Path(__file__).resolve().parents[1]
    zoo = root / "camscope" / "zoo_weights"
    if not (root / "pyproject.toml").is_file() or not zoo.is_dir():
        raise InputError(f"{root} is not a camscope source checkout; name the zoo folder to ship into (--into)")
    return zoo


def ship(run: Path, into: Path | None = None, force: bool = False) -> tuple[str, bool]:
    """Copy the model of a run folder (``RUNS/NAME``: its best; ``RUNS/NAME/last``: its last) into ``into``
    (default: :func:`source_zoo`) if it beats the record there, or with ``force``; returns (name, shipped)."""
    record = read_record(run)
    name = str(record["name"])
    zoo = source_zoo() if into is None else into
    shipped = force or better(record, zoo)
    if shipped:
        copy_model(run, zoo, name)
    return name, shipped
