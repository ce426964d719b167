"""Fixtures shared by every test package."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
import torch


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, then restore the count.

    Why tests pin it: the thread count changes how GEMMs split their sums, so float32 rounding differs
    between runs with different counts, and near-tied values (a deletion order, a top-k) can flip. Tests
    that compare two runs of the same computation pin it to one thread, as the sweep's workers do.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def _peer_releases_without_raising() -> None:
    """pytorch-grad-cam's cleanup empties its lists without the ``detach_()`` that raises on gradient views.

    Why: 1.5.7's ``ActivationsAndGradients.clear`` calls ``detach_()`` on the gradients it stored, which are
    often views, and torch refuses; so each peer CAM raises in ``__del__`` when the cycle collector frees it, at
    any moment of a later test. pytest's hook then formats that traceback, and Python 3.11's traceback formatting
    runs ``ast.parse``: when the collection happened inside another ``ast.parse``, that outer parse failed with
    "AST constructor recursion depth mismatch" (a CI run lost ``test_lab_boundary`` so). The peer's maps are
    untouched: ``clear`` only runs when its object is released. camscope's own ``clear`` never called ``detach_``.
    """
    from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients

    def clear(self: ActivationsAndGradients) -> None:
        self.activations.clear()
        self.gradients.clear()

    # kept for the whole process, never undone: peer objects are freed until the interpreter exits
    ActivationsAndGradients.clear = clear  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def torch_threads() -> Callable[[int], AbstractContextManager[None]]:
    """The context manager above, for fixtures of any scope (``with torch_threads(1): ...``)."""
    return _torch_threads


@pytest.fixture(scope="package")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a whole test package: a package's conftest makes it autouse."""
    with _torch_threads(1):
        yield


@pytest.fixture
def curve_labels(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The y-axis label of every curve plot drawn in the test (``camscope.viz.plot_curves``, also as the report's
    charts imported it), in order."""
    from camscope import viz
    from camscope.report import charts

    labels: list[str] = []
    draw = viz.plot_curves

    def recording(*args: object, **kwargs: object) -> object:
        labels.append(str(kwargs["ylabel"]))
        return draw(*args, **kwargs)

    monkeypatch.setattr(viz, "plot_curves", recording)
    monkeypatch.setattr(charts, "plot_curves", recording)
    return labels
