"""Shared sweep fixture: one reference run of the tiny sweep, which the resume, kill and Ray tests compare with."""

from __future__ import annotations

import pytest
import torch

from tests.sweep.helpers import write_config

# Every sweep in this package — in-process, in a `camscope sweep` subprocess or in a Ray actor — runs with
# one torch thread: the thread count changes the rounding of matrix products, and on the random-weights
# minis that can flip the deletion order of near-tied map values, so runs compared to 1e-5 must share it.
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True, scope="package")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory):
    """(config path, config, results table) of one uninterrupted local run of the tiny sweep."""
    from camscope.sweep import ResultsStore, load_config, run_sweep

    folder = tmp_path_factory.mktemp("reference")
    path = write_config(folder / "sweep.toml")
    config = load_config(path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a session fixture is set up before the package's one_thread
    try:
        run_sweep(config, progress=False)
    finally:
        torch.set_num_threads(threads)
    return path, config, ResultsStore(config.output).read()
