"""Damaged results stores heal on ``--resume`` (to rows equal to an uninterrupted run); ``report`` skips what
does not read, with a warning and a count; one sweep at a time holds a results folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from camscope.sweep import ResultsStore, load_config, run_sweep
from camscope.sweep.store import StoreLock
from tests.reliability.helpers import assert_one_line_error, warning_lines
from tests.sweep.helpers import assert_same_results, write_config

SETTINGS = {
    "models": [{"name": "mini_resnet", "random_weights": True}],
    "methods": ["gradcam"],
    "metrics": {"deletion": {"step": 512}},
    "images": {"source": "synthetic:4", "seed": 5},
    "shard_size": 2,
}


def _config(folder: Path, **overrides: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_config(folder / "sweep.toml", **{**SETTINGS, **overrides})


@pytest.fixture(scope="module")
def reference_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the small sweep's config and the results of one uninterrupted run."""
    folder = tmp_path_factory.mktemp("reference")
    run_sweep(load_config(_config(folder)), progress=False)
    return folder


@pytest.fixture(scope="module")
def reference(reference_folder: Path):
    """The rows of the uninterrupted run."""
    return ResultsStore(reference_folder / "results").read()


@pytest.fixture
def finished(reference_folder: Path, tmp_path: Path) -> tuple[Path, ResultsStore]:
    """A copy of the finished sweep (config + results), ready to be damaged."""
    shutil.copytree(reference_folder, tmp_path / "copy")
    return tmp_path / "copy" / "sweep.toml", ResultsStore(tmp_path / "copy" / "results")


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": os.urandom(len(data)), "empty": b""}[how])


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
def test_damaged_part_heals_on_resume(run_cli, finished, reference, how: str) -> None:
    path, store = finished
    victim = sorted(store.parts.glob("*.parquet"))[1]
    _damage(victim, how)
    run = run_cli("sweep", path, "--resume", "--no-progress")
    assert run.code == 0, run.err
    assert f"unreadable parts/{victim.name}: moved aside" in run.out and "1 task(s) computed" in run.out
    assert victim.with_name(victim.name + ".corrupt").is_file()
    assert_same_results(store.read(), reference)


def test_damaged_maps_heal_on_resume(run_cli, finished, reference) -> None:
    path, store = finished
    victim = sorted(store.maps_dir.glob("*.npz"))[0]
    _damage(victim, "truncated")
    run = run_cli("sweep", path, "--resume", "--no-progress")
    assert run.code == 0 and "moved aside" in run.out
    assert store.maps(victim.stem)["maps"].shape[0] == 2
    assert_same_results(store.read(), reference)


def test_damaged_run_json_heals_on_resume(run_cli, finished, reference) -> None:
    path, store = finished
    (store.root / "run.json").write_text('{"config_hash": ')
    run = run_cli("sweep", path, "--resume", "--no-progress")
    assert run.code == 0, run.err
    assert "run.json" in run.out and (store.root / "run.json.corrupt").is_file()
    assert store.metadata()["config_hash"] == load_config(path).hash()
    assert_same_results(store.read(), reference)


def test_resume_without_damage_computes_nothing(run_cli, finished) -> None:
    path, _ = finished
    run = run_cli("sweep", path, "--resume", "--no-progress")
    assert run.code == 0 and "0 task(s) computed" in run.out and "moved aside" not in run.out


def test_report_skips_a_damaged_part_with_a_count(run_cli, finished) -> None:
    _, store = finished
    _damage(sorted(store.parts.glob("*.parquet"))[0], "truncated")
    run = run_cli("report", store.root)
    assert run.code == 0, run.err
    [line] = [w for w in warning_lines(run) if "skipped" in w]
    assert "1 unreadable part file" in line
    page = (store.root / "report.html").read_text()
    assert 'data-damaged="1"' in page and "RANDOM WEIGHTS" in page


def test_report_skips_damaged_maps(run_cli, finished) -> None:
    _, store = finished
    _damage(sorted(store.maps_dir.glob("*.npz"))[0], "garbage")
    run = run_cli("report", store.root)
    assert run.code == 0 and any("unreadable" in w for w in warning_lines(run))
    assert 'data-damaged="1"' in (store.root / "report.html").read_text()


def test_report_with_damaged_run_json(run_cli, finished) -> None:
    _, store = finished
    (store.root / "run.json").write_bytes(b"\xff\xfe not json")
    run = run_cli("report", store.root)
    assert run.code == 0 and any("run.json" in w for w in warning_lines(run))
    page = (store.root / "report.html").read_text()
    assert "RANDOM WEIGHTS" in page  # known from the rows even without the metadata


@pytest.mark.parametrize("removed", ["all", "one"])
def test_report_says_which_tasks_have_no_results(run_cli, finished, removed: str) -> None:
    """A store whose parts are gone was reported as "every image of every task was computed"."""
    _, store = finished
    parts = sorted(store.parts.glob("*.parquet"))
    tasks = store.metadata()["tasks"]
    assert len(parts) == tasks == 2
    for part in parts if removed == "all" else parts[:1]:
        part.unlink()
    gone = len(parts) if removed == "all" else 1
    run = run_cli("report", store.root)
    assert run.code == 0, run.err
    [line] = [w for w in warning_lines(run) if "no results" in w]
    assert f"{gone} of {tasks} task(s)" in line and "--resume" in line
    page = (store.root / "report.html").read_text()
    assert f'data-missing-tasks="{gone}"' in page
    assert "every image of every task was computed" not in page


def test_report_of_a_complete_store_misses_nothing(run_cli, finished) -> None:
    _, store = finished
    run = run_cli("report", store.root)
    assert run.code == 0 and not [w for w in warning_lines(run) if "no results" in w]
    assert "every image of every task was computed" in (store.root / "report.html").read_text()


def test_other_config_in_folder_refused(run_cli, finished, tmp_path: Path) -> None:
    _, store = finished
    other = _config(tmp_path / "other", methods=["eigencam"])
    assert_one_line_error(run_cli("sweep", other, "--output", store.root), "another sweep config")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporary_files_of_live_writers_survive(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.parts.mkdir(parents=True)
    live = store.parts / f".a.parquet.pid{os.getppid()}-x1.tmp"
    dead = store.parts / f".b.parquet.pid{_dead_pid()}-x2.tmp"
    legacy = store.parts / ".c.parquet.abc.tmp"
    for p in (live, dead, legacy):
        p.write_bytes(b"partial")
    assert store.clean_temporary() == 2
    assert live.exists() and not dead.exists() and not legacy.exists()


def test_second_sweep_on_a_locked_folder_exits_2(run_cli, tmp_path: Path) -> None:
    path = _config(tmp_path)
    with StoreLock(load_config(path).output):
        line = assert_one_line_error(run_cli("sweep", path, "--no-progress"), "in use by another sweep")
    assert f"process {os.getpid()}" in line
    with StoreLock(load_config(path).output) as again:  # released on exit: free for the next sweep
        assert again.took_over is None


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    pid = _dead_pid()
    (tmp_path / ".lock").write_text(json.dumps({"pid": pid, "host": "h", "started": "then", "command": "x"}))
    with StoreLock(tmp_path) as lock:
        assert lock.took_over is not None and lock.took_over["pid"] == pid
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


@pytest.mark.slow
def test_two_concurrent_sweeps_one_runs_one_exits_2(run_cli, tmp_path: Path, reference) -> None:
    path = _config(tmp_path)
    output = Path(load_config(path).output)
    first = subprocess.Popen(
        [sys.executable, "-m", "camscope", "sweep", str(path), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        lock = output / ".lock"
        if lock.is_file() and f'"pid": {first.pid}' in lock.read_text():
            break
        time.sleep(0.05)
    assert first.poll() is None, "the first sweep ended before the second could start"
    second = run_cli("sweep", path, "--no-progress")
    assert_one_line_error(second, "in use by another sweep", f"process {first.pid}")
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    assert_same_results(ResultsStore(output).read(), reference)
