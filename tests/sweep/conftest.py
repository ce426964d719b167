"""Shared sweep fixture: one reference run of the tiny sweep, which the resume, kill and Ray tests compare with."""

from __future__ import annotations

import pytest

from tests.sweep.helpers import write_config

# Every sweep in this package — in-process, in a `camscope sweep` subprocess or in a Ray actor — runs with
# one torch thread: the thread count changes the rounding of matrix products, and on the random-weights
# minis that can flip the deletion order of near-tied map values, so runs compared to 1e-5 must share it.
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True, scope="package")
def _one_thread(one_torch_thread: None) -> None:
    """Every compared sweep runs with one torch thread (see ``torch_threads`` in tests/conftest.py)."""


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory, torch_threads):
    """(config path, config, results table) of one uninterrupted local run of the tiny sweep."""
    from camscope.sweep import ResultsStore, load_config, run_sweep

    folder = tmp_path_factory.mktemp("reference")
    path = write_config(folder / "sweep.toml")
    config = load_config(path)
    with torch_threads(1):  # a session fixture is set up before the package's one thread
        run_sweep(config, progress=False)
    return path, config, ResultsStore(config.output).read()
