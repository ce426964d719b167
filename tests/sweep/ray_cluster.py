"""A private two-node Ray cluster on this machine for the fault-tolerance tests.

Two ``ray start --block`` processes (head and worker, one CPU each), each in its own process group, with
their own temp dir and ports, so the cluster never meets another Ray instance of the machine: nothing
is written to /tmp/ray, and the default ports (6379, 8265, 10001, 52365) stay free. Token
authentication is off (``RAY_AUTH_MODE=disabled``) so ``~/.ray/auth_token`` is neither read nor written.
The head's health checks are fast, so a killed node is declared dead within about two seconds.
Teardown signals each process group by the PID this module started, then kills what is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: environment of every process that talks to the private cluster (its nodes and the sweep's driver)
MARKER = "CAMSCOPE_TEST_RAY_CLUSTER"
CLUSTER_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
_HEALTH = {
    "RAY_health_check_initial_delay_ms": "0",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    address: str
    head: subprocess.Popen
    worker: subprocess.Popen
    temp_dir: Path

    def raylet(self, node: subprocess.Popen) -> int | None:
        """The PID of the raylet of ``node`` (a ``ray start --block`` process), if it is running."""
        return next((pid for pid in descendants(node.pid) if _read(pid, "comm").strip() == "raylet"), None)

    def actors(self, node: subprocess.Popen, busy: bool = False) -> list[int]:
        """PIDs of the camscope model actors on ``node``; ``busy``: only those running a task now (Ray
        titles an actor's process after the method it runs)."""
        title = "_ModelActor.run" if busy else "_ModelActor"
        return [pid for pid in descendants(node.pid) if title in _read(pid, "cmdline")]


def _read(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    """PIDs of every process below ``pid`` (read from /proc: the tests run on Linux)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _read(int(entry.name), "stat")
            if stat:
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _start(args: list[str], env: dict[str, str], temp_dir: Path, name: str) -> subprocess.Popen:
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    log = open(temp_dir / f"{name}.log", "wb")  # noqa: SIM115 - the process writes it until teardown
    return subprocess.Popen(
        [ray, "start", "--block", "--num-cpus=1", "--disable-usage-stats", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: teardown signals the group
    )


def _wait_started(log: Path, proc: subprocess.Popen, timeout: float) -> None:
    """Wait until ``ray start`` says its node runs (cheaper than a probing driver)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Ray runtime started" in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"ray start failed: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    raise TimeoutError(f"ray start did not finish in {timeout:.0f} s")


def _wait_nodes(address: str, n: int, env: dict[str, str], timeout: float) -> None:
    """Wait until the cluster at ``address`` has ``n`` alive nodes (checked from a short-lived driver)."""
    probe = (
        "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
        "print(sum(1 for node in ray.nodes() if node['Alive']))"
    )
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:  # the GCS port first: a driver started before it listens waits 40 s per attempt
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            time.sleep(0.3)
            continue
        with contextlib.suppress(subprocess.TimeoutExpired):
            run = subprocess.run(
                [sys.executable, "-c", probe, address], env=env, capture_output=True, text=True, timeout=20
            )
            if run.returncode == 0 and run.stdout.strip() == str(n):
                return
        time.sleep(0.5)
    raise TimeoutError(f"the test cluster at {address} did not reach {n} nodes in {timeout:.0f} s")


def _marked(marker: str) -> list[int]:
    """PIDs of the processes whose environment holds ``marker``: every process of one test cluster, the
    orphans of a killed raylet included (they inherit the environment of the ``ray start`` that began it)."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _teardown(procs: list[subprocess.Popen], marker: str) -> None:
    """SIGKILL each process of the cluster, by PID, until none is left (a killed raylet can no longer
    spawn workers, so this ends in a round or two)."""
    for _ in range(20):
        pids = _marked(marker)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


@contextlib.contextmanager
def two_node_cluster(timeout: float = 60) -> Iterator[Cluster]:
    """Head + worker node, one CPU each, on private ports and a private temp dir."""
    temp_dir = Path(tempfile.mkdtemp(prefix="csray", dir="/tmp"))  # short: Ray's socket paths are limited
    env = {**os.environ, **CLUSTER_ENV}
    env.pop("RAY_ADDRESS", None)
    node_env = {**env, MARKER: temp_dir.name}
    port = free_port()
    address = f"127.0.0.1:{port}"
    head_args = [
        "--head",
        f"--port={port}",
        f"--temp-dir={temp_dir}",
        "--include-dashboard=false",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]
    worker_args = [
        f"--address={address}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]
    procs = [_start(head_args, {**node_env, **_HEALTH}, temp_dir, "head")]
    try:
        _wait_started(temp_dir / "head.log", procs[0], timeout)
        procs.append(_start(worker_args, node_env, temp_dir, "worker"))
        _wait_nodes(address, 2, env, timeout)
        yield Cluster(address, procs[0], procs[1], temp_dir)
    finally:
        _teardown(procs, temp_dir.name)
        shutil.rmtree(temp_dir, ignore_errors=True)
