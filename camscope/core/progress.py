"""Progress of long loops, and their cooperative cancellation.

Score-CAM, Ablation-CAM, RELAX and the perturbation metrics work chunk after chunk. :func:`steps` wraps
such a loop: a tqdm bar on an interactive terminal, and — inside :func:`monitor` — a callback after each
chunk and a check of a cancel flag before it. A server (``camscope app``) uses this to show a long cell's
progress and to stop it within one chunk: a Python thread cannot be killed, only asked to stop, and a
stopped computation must release its model for the other requests.

The monitor is a context variable, so it belongs to the thread (or task) that set it: two requests
computed at once in two threads see their own flags.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from tqdm.auto import tqdm

from camscope.core.errors import CamscopeError

T = TypeVar("T")
Report = Callable[[int, int, str], None]  # (chunks done, chunks in all, what is running)


class Cancelled(CamscopeError):
    """The computation was stopped on request (the cancel flag of :func:`monitor` was set)."""


@dataclass(frozen=True)
class _Monitor:
    cancel: threading.Event | None
    report: Report | None


_CURRENT: ContextVar[_Monitor | None] = ContextVar("camscope_monitor", default=None)


@contextmanager
def monitor(cancel: threading.Event | None = None, report: Report | None = None) -> Iterator[None]:
    """While active, every :func:`steps` loop of this thread raises :class:`Cancelled` once ``cancel`` is set
    (checked before each chunk) and calls ``report(done, total, desc)`` after each chunk."""
    token = _CURRENT.set(_Monitor(cancel, report))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def check_cancelled() -> None:
    """Raise :class:`Cancelled` if the active monitor's flag is set."""
    current = _CURRENT.get()
    if current is not None and current.cancel is not None and current.cancel.is_set():
        raise Cancelled("stopped on request")


def steps(items: Sequence[T], desc: str, bar: bool = True) -> Iterator[T]:
    """Iterate over ``items`` (chunks of work), checking for cancellation before each and reporting after it.

    ``bar``: a tqdm bar, shown only on an interactive terminal (never in logs or CI output) and only for
    more than 4 chunks.
    """
    current = _CURRENT.get()
    total = len(items)
    for done, item in enumerate(tqdm(items, desc=desc, leave=False, disable=None if bar and total > 4 else True)):
        check_cancelled()
        yield item
        if current is not None and current.report is not None:
            current.report(done + 1, total, desc)


def chunk_steps(total: int, size: int, desc: str, bar: bool = True) -> Iterator[slice]:
    """:func:`steps` over the slices that cut ``range(total)`` into chunks of ``size``."""
    return steps([slice(start, min(start + size, total)) for start in range(0, total, size)], desc, bar=bar)
