"""An interrupt arriving while a part or a maps file is written is held until the file is in place: the
file is whole, and the interrupt then reaches its handler as the KeyboardInterrupt the sweep turns into its
exit line (before, one arriving inside ``np.savez_compressed`` became zipfile's own ValueError)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from camscope.sweep.store import atomic_write


def _interrupted_savez(path: Path, signum: int) -> None:
    signal.raise_signal(signum)  # arrives mid-write, before zipfile opens its entry
    with path.open("wb") as handle:
        np.savez_compressed(handle, maps=np.arange(12.0).reshape(3, 4))


def _raise_interrupt(signum: int, _frame: object) -> None:  # what `camscope sweep` installs for SIGTERM
    raise KeyboardInterrupt(signal.Signals(signum).name)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_during_a_write_is_delivered_once_the_file_is_in_place(tmp_path: Path, signum: int) -> None:
    previous = signal.signal(signum, _raise_interrupt)
    target = tmp_path / "task.npz"
    try:
        with pytest.raises(KeyboardInterrupt, match=signal.Signals(signum).name):
            atomic_write(target, lambda p: _interrupted_savez(p, signum))
    finally:
        signal.signal(signum, previous)
    np.testing.assert_array_equal(np.load(target)["maps"], np.arange(12.0).reshape(3, 4))  # whole, renamed
    assert not list(tmp_path.glob(".*.tmp"))
    assert signal.getsignal(signum) is previous  # the handlers are put back


def test_a_failed_write_leaves_nothing_and_restores_the_handlers(tmp_path: Path) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def broken(path: Path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "part.parquet", broken)
    assert not list(tmp_path.iterdir())
    assert {s: signal.getsignal(s) for s in before} == before


def test_writes_from_another_thread_run_as_they_are(tmp_path: Path) -> None:
    """Only the main thread may set handlers: a worker thread's write neither holds nor fails."""
    errors: list[BaseException] = []

    def write() -> None:
        try:
            atomic_write(tmp_path / "t.txt", lambda p: p.write_text("ok"))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert not errors and (tmp_path / "t.txt").read_text() == "ok"
