"""The Ray engine on its private local instance writes the same results as the local engine."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from camscope.sweep import ResultsStore, load_config, run_sweep
from tests.sweep.helpers import assert_same_results, write_config
from tests.sweep.ray_cluster import descendants

ray = pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_engine_matches_local_engine(reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, ref_table = reference
    # a cluster named by the environment must not be joined: no address means a private instance
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    config = load_config(write_config(tmp_path / "sweep.toml"))
    log = io.StringIO()
    result = run_sweep(config, engine="ray", num_cpus=2, progress=False, out=log)
    assert result.computed == result.total and not result.failures
    device = ResultsStore(config.output).metadata()["device"]
    assert device.startswith("ray: 2 actor(s) at once, 1 CPU(s) each, 1 torch thread(s)"), device
    # one torch thread per actor, as the reference's local run: every row equal
    assert_same_results(ResultsStore(config.output).read(), ref_table)
    assert not ray.is_initialized()
    left = [pid for pid in descendants(os.getpid()) if b"ray" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert not left, f"Ray processes left running: {left}"
