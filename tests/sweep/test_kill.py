"""Kill a sweep with SIGKILL half-way, resume it: the result set equals that of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from camscope.sweep import ResultsStore, load_config
from tests.sweep.conftest import ONE_THREAD_ENV
from tests.sweep.helpers import assert_same_results, write_config


def _sweep(config: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "camscope", "sweep", str(config), "--no-progress", *extra]
    env = {**os.environ, **ONE_THREAD_ENV}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.mark.slow
def test_sigkill_then_resume_loses_and_duplicates_nothing(reference, tmp_path: Path) -> None:
    _, ref_config, ref_table = reference
    path = write_config(tmp_path / "sweep.toml")
    config = load_config(path)
    assert config.hash() == ref_config.hash()
    store = ResultsStore(config.output)
    total = len(ref_table.column("task").unique())

    proc = _sweep(path)
    deadline = time.monotonic() + 240
    while len(store.done()) < total // 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = store.done()
    assert total // 2 <= len(done) < total, f"kill came too late or too early: {len(done)} of {total}"
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in store.parts.glob("*.parquet")}

    resumed = _sweep(path, "--resume")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"{len(done)} of {total} tasks already done" in out
    assert f"{total - len(done)} task(s) computed" in out
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in store.parts.glob("*.parquet")}
    assert {k: after[k] for k in before} == before, "a finished task was recomputed"
    assert len(after) == total and not list(Path(config.output).rglob(".*.tmp"))
    assert_same_results(store.read(), ref_table)
