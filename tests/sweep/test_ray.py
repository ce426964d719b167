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


@pytest.mark.slow
def test_ray_engine_matches_local_engine(reference, local_ray, tmp_path: Path) -> None:
    _, _, ref_table = reference
    config = load_config(write_config(tmp_path / "sweep.toml"))
    log = io.StringIO()
    result = run_sweep(config, engine="ray", progress=False, out=log)
    assert result.computed == result.total and not result.failures
    assert "ray" in ResultsStore(config.output).metadata()["device"]
    assert_same_results(ResultsStore(config.output).read(), ref_table)
