"""Running Quantus 0.6.0 beside camscope's metric families on the same inputs."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

# Quantus 0.6.0 warns at import about its optional backends; the tests do not need them
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import quantus

PER_IMAGE = {"normalise_axes": (1, 2, 3)}  # Quantus's max normalisation per image, as camscope's


@contextlib.contextmanager
def numpy_trapz() -> Iterator[None]:
    """Give NumPy back ``np.trapz`` for the block: Quantus 0.6.0 calls it, and NumPy 2.4 removed it
    (``np.trapezoid`` is the same function under its new name). Only this test process sees it."""
    had = hasattr(np, "trapz")
    if not had:
        np.trapz = np.trapezoid  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if not had:
            del np.trapz  # type: ignore[attr-defined]


def quantus_call(metric: Any, **call: Any) -> Any:
    """``metric(**call)`` with Quantus's warnings silenced and ``np.trapz`` available."""
    with warnings.catch_warnings(), numpy_trapz():
        warnings.simplefilter("ignore")
        return metric(**call)


def quantus_scores(metric: Any, **call: Any) -> np.ndarray:
    """``metric(**call)`` as a float array."""
    return np.asarray(quantus_call(metric, **call), dtype=np.float64)


__all__ = ["PER_IMAGE", "numpy_trapz", "quantus", "quantus_call", "quantus_scores"]
