"""The Ray engine at its edges: bad or dead addresses, interrupts at every stage, a node lost mid-sweep.

Every failure to reach a cluster is one line and exit status 2, within the connect timeout; SIGINT and
SIGTERM end a sweep within seconds whatever it is doing; a worker node killed mid-sweep costs nothing
but time: its tasks run again on the other node and every row equals the local engine's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from camscope.cli import main
from camscope.sweep import ResultsStore, load_config
from tests.sweep.conftest import ONE_THREAD_ENV
from tests.sweep.helpers import assert_same_results, write_config
from tests.sweep.ray_cluster import CLUSTER_ENV, free_port, two_node_cluster

pytest.importorskip("ray")


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny sweep's config; Ray's temp dir (its cluster file) private to the test, no RAY_ADDRESS."""
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "raytmp"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return write_config(tmp_path / "sweep.toml")


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("camscope: error: "), err
    return lines[0]


def test_closed_port_is_one_line_and_exit_2(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # bound and released: nothing listens there
    start = time.monotonic()
    assert main(["sweep", str(config), "--engine", "ray", "--address", f"127.0.0.1:{port}", "--no-progress"]) == 2
    assert time.monotonic() - start < 30  # Ray alone retries such an address for ~14 minutes
    line = _error_line(capsys)
    assert f"cannot reach a Ray cluster at 127.0.0.1:{port}" in line and "refused" in line
    assert not (config.parent / "results").exists(), "a sweep that never started left its folder"


def test_stale_cluster_file_is_named(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cluster_file = config.parent / "raytmp" / "ray" / "ray_current_cluster"
    assert main(["sweep", str(config), "--engine", "ray", "--address", "auto", "--no-progress"]) == 2
    line = _error_line(capsys)
    assert "no Ray cluster was started on this machine" in line and str(cluster_file) in line
    cluster_file.parent.mkdir(parents=True)
    cluster_file.write_text(f"127.0.0.1:{free_port()}")  # left by a cluster that was killed
    assert main(["sweep", str(config), "--engine", "ray", "--address", "auto", "--no-progress"]) == 2
    line = _error_line(capsys)
    assert f"named by {cluster_file}" in line and "stale" in line and "ray stop" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--address", "ray://head:10001"], "Ray Client (ray://) addresses are not supported"),
        (["--address", "head-without-port"], "not a Ray cluster address"),
        (["--address", "127.0.0.1:1", "--num-cpus", "2"], "--num-cpus sizes the private local Ray instance"),
    ],
)
def test_unusable_ray_options_are_one_line(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["sweep", str(config), "--engine", "ray", *args, "--no-progress"]) == 2
    assert message in _error_line(capsys)
    assert not (config.parent / "results").exists()


def test_ray_options_with_the_local_engine_are_refused(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", str(config), "--address", "auto", "--connect-timeout", "5", "--no-progress"]) == 2
    assert "--address, --connect-timeout only apply to --engine ray" in _error_line(capsys)


def test_connect_timeout_help_states_the_engine_default(capsys: pytest.CaptureFixture[str]) -> None:
    from camscope.sweep.engines.ray import DEFAULT_CONNECT_TIMEOUT

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert f"(default {DEFAULT_CONNECT_TIMEOUT:g})" in " ".join(capsys.readouterr().out.split())


def test_refused_token_says_what_to_do() -> None:
    """Ray's own error for a wrong token (measured on Ray 2.60) names only the address."""
    from camscope.sweep.engines.ray import _join_error

    try:
        try:
            raise RuntimeError("Failed to connect to GCS. Unauthenticated: RPC error: InvalidAuthToken")
        except RuntimeError as cause:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from cause
    except ConnectionError as exc:
        message = str(_join_error(exc, "10.0.0.1:6379", "--address 10.0.0.1:6379"))
    assert "refused this driver's authentication token" in message
    assert "~/.ray/auth_token" in message and "RAY_AUTH_TOKEN" in message


# ---------------------------------------------------------------------------- subprocesses
class _Sweep:
    """``camscope sweep`` in a subprocess, its output lines timestamped as they come."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-m", "camscope", "sweep", str(config), "--no-progress", *args]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **ONE_THREAD_ENV, **(env or {})},
        )
        self.parent_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])  # said if the sweep does not end
        self.lines: list[tuple[float, str, str]] = []
        self.readers = [
            threading.Thread(target=self._read, args=(stream, name), daemon=True)
            for stream, name in ((self.proc.stdout, "out"), (self.proc.stderr, "err"))
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream: object, name: str) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append((time.monotonic(), name, line.rstrip("\n")))

    def started(self, timeout: float = 120) -> float:
        """When the sweep began (its 'results folder' line: imports done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            for at, _, line in self.lines:
                if line.startswith("results folder:"):
                    return at
            time.sleep(0.05)
        raise AssertionError(f"the sweep did not start: {self.text()}")

    def finish(self, timeout: float) -> float:
        """Wait for the exit; the time it came."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(
                f"no exit within {timeout} s (signals blocked in the test process: {sorted(self.parent_mask)}): "
                + self.text()
            ) from None
        end = time.monotonic()
        for reader in self.readers:
            reader.join(timeout=5)
        return end

    def err(self) -> list[str]:
        return [line for _, name, line in self.lines if name == "err"]

    def text(self) -> str:
        return "\n".join(line for _, _, line in self.lines)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: Ray's connect waits there forever."""
    server = socket.create_server(("0.0.0.0", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.slow
def test_silent_cluster_times_out_and_sigint_ends_the_connect(config: Path, silent_port: int) -> None:
    address = f"127.0.0.1:{silent_port}"
    sweep = _Sweep(config, "--engine", "ray", "--address", address, "--connect-timeout", "2")
    begun = sweep.started()
    end = sweep.finish(timeout=60)
    assert sweep.proc.returncode == 2, sweep.text()
    assert end - begun < 2 + 20, f"{end - begun:.1f} s for a 2 s connect timeout"
    assert len(sweep.err()) == 1 and "no answer from a Ray cluster" in sweep.err()[0], sweep.text()
    assert "--connect-timeout" in sweep.err()[0]
    assert not (config.parent / "results").exists()

    sweep = _Sweep(config, "--engine", "ray", "--address", address, "--connect-timeout", "300")
    sweep.started()
    time.sleep(3)  # importing Ray, then blocked in its C++ client: Ray alone ignores Ctrl-C there
    sweep.proc.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    end = sweep.finish(timeout=60)
    assert sweep.proc.returncode == 130, sweep.text()
    assert end - interrupted < 10, f"exit {end - interrupted:.1f} s after SIGINT"
    assert sweep.err() == ["camscope: interrupted"], sweep.text()


@pytest.mark.slow
def test_sigterm_ends_a_running_sweep_and_keeps_its_tasks(config: Path) -> None:
    store = ResultsStore(load_config(config).output)
    sweep = _Sweep(config)
    sweep.started()
    deadline = time.monotonic() + 120
    while not (store.parts.is_dir() and store.done()) and time.monotonic() < deadline:
        time.sleep(0.05)
    sweep.proc.send_signal(signal.SIGTERM)
    terminated = time.monotonic()
    end = sweep.finish(timeout=60)
    assert sweep.proc.returncode == 130, sweep.text()
    assert end - terminated < 10, f"exit {end - terminated:.1f} s after SIGTERM"
    assert "camscope: interrupted" in sweep.err() and "Traceback" not in sweep.text()
    assert store.done(), "finished tasks are kept"


@pytest.mark.slow
def test_a_lost_worker_node_costs_only_time(reference, tmp_path: Path) -> None:
    """Two `ray start` nodes; the worker's raylet is killed while it runs a model: its tasks move to
    the head node, the sweep exits 0 with every row equal to the local engine's, and no traceback."""
    _, _, ref_table = reference
    path = write_config(tmp_path / "sweep.toml")
    store = ResultsStore(load_config(path).output)
    with two_node_cluster() as cluster:
        sweep = _Sweep(path, "--engine", "ray", "--address", cluster.address, env=CLUSTER_ENV)
        sweep.started()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sweep.proc.poll() is None:
            if cluster.actors(cluster.worker, busy=True):  # mid-task: its model's tasks are unfinished
                break
            time.sleep(0.05)
        raylet = cluster.raylet(cluster.worker)
        assert raylet is not None and sweep.proc.poll() is None, sweep.text()
        os.kill(raylet, signal.SIGKILL)
        sweep.finish(timeout=180)
    out = sweep.text()
    assert sweep.proc.returncode == 0, out
    assert "ray: lost node" in out and "run again on another worker" in out, out
    assert "Traceback" not in out and "Raylet is terminated" not in out and "The node with node id" not in out, out
    assert_same_results(store.read(), ref_table)
