"""The mini models are tiny: one torch thread is as fast as two, and far faster on a busy machine."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="package")
def _one_thread(one_torch_thread: None) -> None:
    """Trained-model checks compare numbers with one torch thread (see tests/conftest.py)."""
