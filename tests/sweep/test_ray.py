"""The Ray engine on a local 2-CPU Ray instance writes the same results as the local engine."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from camscope.sweep import ResultsStore, load_config, run_sweep
from tests.sweep.helpers import assert_same_results, write_config

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture
def one_thread_reference(tmp_path_factory: pytest.TempPathFactory):
    """The tiny sweep run locally with one torch thread, as each Ray actor runs it here (2 CPUs, 2 models).

    Why not the session reference: a different thread count changes the rounding of the matrix products,
    and on a random-weights model the deletion order of near-tied map values can then flip; with the same
    thread count both engines run the same kernels and must agree to 1e-5.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = load_config(write_config(tmp_path_factory.mktemp("reference-1-thread") / "sweep.toml"))
        run_sweep(config, progress=False)
    finally:
        torch.set_num_threads(threads)
    return ResultsStore(config.output).read()


@pytest.mark.slow
def test_ray_engine_matches_local_engine(one_thread_reference, local_ray, tmp_path: Path) -> None:
    ref_table = one_thread_reference
    config = load_config(write_config(tmp_path / "sweep.toml"))
    log = io.StringIO()
    result = run_sweep(config, engine="ray", progress=False, out=log)
    assert result.computed == result.total and not result.failures
    assert "ray" in ResultsStore(config.output).metadata()["device"]
    assert_same_results(ResultsStore(config.output).read(), ref_table)
