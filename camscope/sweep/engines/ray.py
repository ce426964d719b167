"""The Ray engine: the same task function in Ray actors, one model per actor, over a whole cluster.

Why actors and not plain remote functions: loading a model costs more than many tasks, so an actor
loads its model once and runs all of that model's tasks in order (Ray runs an actor's calls in the
order they were submitted, which keeps the worker's shard cache useful). As many actors run at once as
the cluster has slots — one GPU each when it has GPUs, otherwise an equal share of the CPUs — and an
actor is killed when its model is done, freeing the slot for the next model. Outputs return to the
driver, which alone writes the results store: workers need no shared file system.

Where it runs: without ``address`` a private local Ray instance is started (and stopped at the end) —
never a cluster that happens to run on the machine; ``address`` joins a running cluster on purpose
(``"HOST:PORT"``, the head's GCS port, or ``"auto"``: the one ``ray start`` started on this machine).
Ray Client addresses (``ray://``) are refused: a sweep's driver writes the results store, so it runs on
a node of the cluster. Connecting is bounded by ``connect_timeout`` and stays interruptible: Ray's own
connect retries a dead address for ~14 minutes and ignores Ctrl-C.

Faults: a lost actor (its node died, its process was killed) costs only its unfinished tasks, which run
again on a new actor wherever the cluster has room; a task whose actor is lost :data:`MAX_ATTEMPTS`
times is recorded as failed with the reason, and the sweep goes on. The driver prints one line per lost
node instead of the raylet log tails Ray publishes to it.

Install with ``pip install camscope[ray]``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from camscope.core.errors import CamscopeError
from camscope.sweep.config import SweepConfig
from camscope.sweep.image_source import image_ids
from camscope.sweep.schema import TaskOutput
from camscope.sweep.tasks import Task
from camscope.sweep.worker import TaskWorker, failed_output

#: seconds to reach a cluster (``--connect-timeout``)
DEFAULT_CONNECT_TIMEOUT = 30.0
#: a task whose actor is lost this many times is recorded as failed
MAX_ATTEMPTS = 3
#: how long the cluster may lack room for any actor (every node that had some is gone) before giving up
NO_ROOM_TIMEOUT = 120.0
_POLL_S = 0.5
#: Ray's number of ~1 s attempts to reach the GCS when joining (read at connect time; its default is 20)
_GCS_WAIT = "RAY_gcs_server_port_wait_time_s"


class RayConnectError(CamscopeError):
    """No Ray cluster could be started or reached: the sweep never began."""


class _ModelActor:
    """Holds one model (through a :class:`TaskWorker`) and runs its tasks."""

    def __init__(self, config: SweepConfig, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.worker = TaskWorker(config)

    def device(self) -> str:
        return str(self.worker.device)

    def run(self, task: Task) -> TaskOutput:
        return self.worker.run(task)

    def plan(self, tasks: Sequence[Task]) -> None:
        self.worker.plan(tasks)


@dataclass
class _Running:
    """A model's actor and its submitted, unfinished calls in submission order (the order it runs them)."""

    actor: Any
    calls: list[tuple[Any, Task]] = field(default_factory=list)


class RayEngine:
    """Spread tasks over a Ray cluster; see the module docstring."""

    name = "ray"

    def __init__(
        self,
        config: SweepConfig,
        address: str | None = None,
        num_cpus: int | None = None,
        connect_timeout: float | None = None,
        threads: int | None = None,
        out: TextIO | None = None,
        **_: Any,
    ) -> None:
        # An interrupt while Ray imports or connects can leave its threads half-started, and interpreter
        # shutdown may then wait on them: until this is done, the command line exits hard (connect_abandoned).
        starting = threading.Event()
        _RUNNING.append(starting)
        try:
            import ray
        except ImportError:
            starting.set()
            raise CamscopeError("the ray engine needs Ray: pip install 'camscope[ray]'") from None
        self.ray: Any = ray  # typed loosely: Ray's API is untyped
        self.config = config
        self.out = out or sys.stderr
        self._ids: list[str] | None = None
        self._owns_ray = not ray.is_initialized()
        try:
            if self._owns_ray:
                timeout = DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
                connect(ray, address, num_cpus, timeout)
        except Exception:
            starting.set()  # a connect that failed and returned (not one interrupted) left nothing running
            raise
        starting.set()
        _RUNNING.remove(starting)
        self._restore_printer = _quiet_raylet_tails()
        try:
            resources = self.ray.cluster_resources()
            self._known_nodes = {n["NodeID"]: n for n in self.ray.nodes() if n.get("Alive")}
        except Exception as exc:
            self.close()
            raise RayConnectError(f"the Ray cluster does not answer: {_first_line(exc)}") from None
        self.gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        models = max(1, len(config.models))
        if self.gpus:
            self.slots, self.cpus_per_actor = self.gpus, max(1, cpus // self.gpus)
        else:
            self.slots = min(models, cpus)
            self.cpus_per_actor = max(1, cpus // self.slots)
        self.threads = threads or self.cpus_per_actor
        self.device = f"ray: {self.slots} actor(s) at once, " + (
            f"1 GPU each ({self.gpus} GPUs)" if self.gpus else f"{self.cpus_per_actor} CPU(s) each"
        )
        self.device += f", {self.threads} torch thread(s)"
        self._actor_cls = ray.remote(_ModelActor)
        self._last_check = 0.0

    # ------------------------------------------------------------------ actors
    def _start(self, model: str, tasks: list[Task]) -> _Running:
        options: dict[str, Any] = {"num_cpus": self.cpus_per_actor, "max_restarts": 0, "max_task_retries": 0}
        if self.gpus:
            options["num_gpus"] = 1
        actor: Any = self._actor_cls.options(**options).remote(self.config, self.threads)
        actor.plan.remote(tasks)  # before its runs: an actor runs its calls in order
        return _Running(actor, [(actor.run.remote(task), task) for task in tasks])

    def _kill(self, actor: Any) -> None:
        with contextlib.suppress(Exception):
            self.ray.kill(actor, no_restart=True)

    def run(self, tasks: Sequence[Task]) -> Iterator[TaskOutput]:
        ray = self.ray
        by_model: dict[str, list[Task]] = {}
        for task in tasks:
            by_model.setdefault(task.model, []).append(task)
        waiting = deque(by_model.items())
        running: dict[str, _Running] = {}
        owner: dict[Any, str] = {}  # object ref -> model
        lost: dict[str, int] = {}  # task id -> times its actor was lost while running it
        no_room_since: float | None = None

        def launch() -> None:
            while waiting and len(running) < self.slots:
                model, model_tasks = waiting.popleft()
                running[model] = self._start(model, model_tasks)
                owner.update((ref, model) for ref, _ in running[model].calls)

        try:
            launch()
            while owner:
                ready, _ = ray.wait(list(owner), num_returns=1, timeout=_POLL_S)
                self._check_nodes()
                if not ready:
                    no_room_since = self._check_room(no_room_since)
                    continue
                no_room_since = None
                ref = ready[0]
                model = owner.pop(ref)
                job = running[model]
                index = next(i for i, (r, _) in enumerate(job.calls) if r == ref)
                task = job.calls.pop(index)[1]
                try:
                    output = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    yield from self._recover(model, task, exc, running, owner, waiting, lost)
                    launch()
                    continue
                if not job.calls:
                    self._kill(running.pop(model).actor)
                    launch()
                yield output
        finally:
            for job in running.values():
                self._kill(job.actor)

    def _recover(
        self,
        model: str,
        task: Task,
        exc: Exception,
        running: dict[str, _Running],
        owner: dict[Any, str],
        waiting: deque[tuple[str, list[Task]]],
        lost: dict[str, int],
    ) -> Iterator[TaskOutput]:
        """The actor of ``model`` is gone while running ``task``: keep what it finished, count the loss
        against ``task``, and queue its unfinished tasks first for a new actor."""
        ray = self.ray
        job = running.pop(model)
        self._kill(job.actor)
        again: list[Task] = []
        for ref, other in job.calls:
            owner.pop(ref, None)
            try:  # a result it finished before it was lost is kept
                ready, _ = ray.wait([ref], timeout=0)
                if ready:
                    yield ray.get(ref)
                    continue
            except ray.exceptions.RayError:
                pass
            again.append(other)
        reason = _first_line(exc)
        lost[task.id] = lost.get(task.id, 0) + 1
        if lost[task.id] >= MAX_ATTEMPTS:
            yield self._failed(task, f"its Ray worker was lost {lost[task.id]} times (last: {reason})")
        else:
            again.insert(0, task)
        self._check_nodes(force=True)
        if again:
            print(
                f"ray: the worker of {model} was lost ({reason}); {len(again)} task(s) run again on another worker",
                file=self.out,
            )
            waiting.appendleft((model, again))

    def _failed(self, task: Task, reason: str) -> TaskOutput:
        if self._ids is None:
            self._ids = image_ids(self.config.images)
        return failed_output(self.config, self._ids, task, reason)

    # ------------------------------------------------------------------ cluster state
    def _check_nodes(self, force: bool = False) -> None:
        """One line for each node that was alive and is now dead (checked at most once a second)."""
        now = time.monotonic()
        if not force and now - self._last_check < 1.0:
            return
        self._last_check = now
        try:
            nodes = self.ray.nodes()
        except Exception as exc:
            raise CamscopeError(
                f"lost the Ray cluster (its head node?): {_first_line(exc)}; finished tasks are stored, "
                "--resume continues the sweep"
            ) from None
        for node in nodes:
            node_id = node["NodeID"]
            if node.get("Alive"):
                self._known_nodes[node_id] = node
            elif node_id in self._known_nodes:
                del self._known_nodes[node_id]
                address = node.get("NodeManagerAddress", "?")
                print(
                    f"ray: lost node {address} ({node_id[:8]}); its tasks run again on the other nodes", file=self.out
                )

    def _check_room(self, since: float | None) -> float | None:
        """Give up when no node has room for an actor for :data:`NO_ROOM_TIMEOUT` s (all such nodes lost)."""
        total = self.ray.cluster_resources()
        has_room = total.get("GPU", 0) >= 1 if self.gpus else total.get("CPU", 0) >= self.cpus_per_actor
        if has_room:
            return None
        now = time.monotonic()
        if since is None:
            return now
        if now - since > NO_ROOM_TIMEOUT:
            need = "1 GPU" if self.gpus else f"{self.cpus_per_actor} CPU(s)"
            raise CamscopeError(
                f"no node of the Ray cluster has room for a worker ({need}) any more; finished tasks are "
                "stored, --resume continues the sweep"
            )
        return since

    def close(self) -> None:
        self._restore_printer()
        if self._owns_ray and self.ray.is_initialized():
            _shutdown(self.ray)


# ---------------------------------------------------------------------- connecting
def connect(ray: Any, address: str | None, num_cpus: int | None, timeout: float) -> None:
    """Start a private local instance (``address`` None) or join the cluster at ``address``, within
    ``timeout`` seconds, or raise :class:`RayConnectError` with one line saying what to do."""
    if timeout <= 0:
        raise RayConnectError(f"--connect-timeout must be positive, not {timeout:g}")
    target, origin = resolve_address(address)
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if target is None:
        # "local" (not None): Ray would otherwise join any cluster it finds through RAY_ADDRESS or its
        # cluster file, and then refuse num_cpus. In the calling thread, not a helper thread as for a join:
        # the instance's processes die with the thread that started them (Linux's parent-death signal);
        # starting them is Python code, which Ctrl-C interrupts.
        kwargs.update(address="local", num_cpus=num_cpus)
        on_term = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
        try:
            ray.init(**kwargs)
        except Exception as exc:
            raise RayConnectError(f"cannot start a local Ray instance: {_first_line(exc)}") from None
        finally:
            if on_term is not None:  # ray.init replaces it with its own (sys.exit(15))
                signal.signal(signal.SIGTERM, on_term)
        return
    if num_cpus is not None:
        raise RayConnectError(
            "--num-cpus sizes the private local Ray instance; a cluster joined with --address has its own CPUs"
        )
    deadline = time.monotonic() + timeout
    _probe(target, origin, timeout)
    kwargs["address"] = target
    # each of Ray's connection attempts takes ~1 s when the cluster answers but refuses (a wrong token):
    # half the budget for them leaves the other half to say why
    wait = os.environ.get(_GCS_WAIT)
    os.environ[_GCS_WAIT] = wait or str(max(1, int(timeout / 2)))
    try:
        with _stderr_to_devnull():  # Ray's C++ client logs one warning line per attempt
            _bounded(
                lambda: ray.init(**kwargs),
                max(0.1, deadline - time.monotonic()),
                f"no answer from a Ray cluster at {target} ({origin}) within {timeout:g} s (--connect-timeout); "
                "is it the head node's GCS port?",
            )
    except RayConnectError:
        raise
    except Exception as exc:
        raise _join_error(exc, target, origin) from None
    finally:
        if wait is None:
            os.environ.pop(_GCS_WAIT, None)


def resolve_address(address: str | None) -> tuple[str | None, str]:
    """(``host:port`` to join, or None: start a private local instance; what named it, for messages)."""
    if address is None or address == "local":
        return None, "local"
    origin = f"--address {address}"
    if address == "auto":
        env = os.environ.get("RAY_ADDRESS")
        if env:
            address, origin = env, f"RAY_ADDRESS={env}"
        else:
            path = cluster_file()
            try:
                address = path.read_text(encoding="utf-8").strip()
            except OSError:
                raise RayConnectError(
                    f"--address auto: no Ray cluster was started on this machine ({path} does not exist); "
                    "start one with `ray start --head`, or leave out --address for a private local instance"
                ) from None
            origin = f"named by {path}"
    if "://" in address:
        raise RayConnectError(
            f"{origin}: Ray Client (ray://) addresses are not supported, the sweep's driver must run on a node "
            "of the cluster: use --address HOST:PORT (the head's GCS port, 6379 by default) or --address auto"
        )
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RayConnectError(f"{origin}: not a Ray cluster address; use HOST:PORT, 'auto', or no --address")
    return f"{host}:{port}", origin


def cluster_file() -> Path:
    """The file where ``ray start`` records its cluster's address (``/tmp/ray/ray_current_cluster``)."""
    try:
        from ray._common.utils import get_ray_address_file

        return Path(get_ray_address_file(None))
    except (ImportError, AttributeError):  # pragma: no cover - an older Ray keeps it in the same place
        return Path("/tmp/ray/ray_current_cluster")


def _probe(address: str, origin: str, timeout: float) -> None:
    """A TCP connect to the GCS port: a dead address fails here at once, where Ray would retry for minutes."""
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=min(timeout, 10.0)).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        stale = ""
        if origin.startswith("named by"):
            stale = (
                f"; the file is stale if that cluster is gone: `ray stop` or deleting {cluster_file()} clears it, "
                "or leave out --address for a private local instance"
            )
        raise RayConnectError(f"cannot reach a Ray cluster at {address} ({origin}): {reason}{stale}") from None


def _join_error(exc: BaseException, address: str, origin: str) -> RayConnectError:
    text = _chain_text(exc)
    if "InvalidAuthToken" in text or "Unauthenticated" in text or "couldn't find an authentication token" in text:
        return RayConnectError(
            f"the Ray cluster at {address} refused this driver's authentication token: give it the token the "
            "cluster was started with (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token; "
            "`ray get-auth-token` on the head node prints it) - a stale ~/.ray/auth_token left by an earlier "
            "cluster is the usual cause"
        )
    return RayConnectError(f"cannot connect to the Ray cluster at {address} ({origin}): {_first_line(exc)}")


def _bounded(call: Callable[[], Any], timeout: float, on_timeout: str) -> None:
    """Run ``call`` in a daemon thread and wait at most ``timeout`` s for it, in short slices.

    Why a thread: Ray's connect blocks in C++, where Python's signal handlers cannot run; waiting here
    keeps SIGINT/SIGTERM working. A call left running (timeout, interrupt) is recorded: see
    :func:`connect_abandoned`. (Its end is an Event, not ``Thread.join``: an interrupted join marks a
    running thread as stopped.)
    """
    outcome: list[BaseException | None] = []
    done = threading.Event()

    def target() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # handed to the waiting thread
            outcome.append(exc)
        finally:
            done.set()

    _RUNNING.append(done)  # until it is done: an interrupt may come at any point from here
    threading.Thread(target=target, name="camscope-ray-connect", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not done.is_set() and time.monotonic() < deadline:
        done.wait(0.1)
    if not done.is_set():
        raise RayConnectError(on_timeout)
    _RUNNING.remove(done)
    if outcome and outcome[0] is not None:
        raise outcome[0]


#: the ends of connect calls started by :func:`_bounded` and not yet seen finished
_RUNNING: list[threading.Event] = []


def connect_abandoned() -> bool:
    """Whether a Ray connect was given up while it still runs (timeout, Ctrl-C).

    Such a thread is blocked in Ray's C++ client, and interpreter shutdown crashes in it (std::bad_alloc,
    SIGABRT): a command line that saw this ends with ``os._exit`` after printing its error.
    """
    return any(not done.is_set() for done in _RUNNING)


@contextlib.contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block (Ray's C++ client writes a warning there per attempt).

    If the connect is abandoned, its thread keeps writing: then fd 2 stays on /dev/null and Python's
    ``sys.stderr`` moves to a copy of the real one, so camscope's own messages still show.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded, captured): nothing to quiet
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        if connect_abandoned():
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
                sys.stderr = open(saved, "w", buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        else:
            os.dup2(saved, 2)
            os.close(saved)


#: how the messages Ray publishes about a dead node begin (the raylet's log tail, the GCS's notice)
_NODE_DEATH_NOTICES = ("Raylet is terminated", "The node with node id")


def _quiet_raylet_tails() -> Callable[[], None]:
    """Drop the raylet log tails Ray's driver prints when a node dies (20 lines, once per agent of the
    node); :meth:`RayEngine._check_nodes` says it in one line. Other cluster messages keep their first
    line. Returns the function that restores Ray's printer. Best effort: a private hook of Ray's."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:  # pragma: no cover
        return lambda: None
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "__camscope__", False):
        return lambda: None

    def printer(data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        if data.get("pid") != "raylet":
            original(data, *args, **kwargs)
            return
        lines = [str(line).splitlines()[0] for line in data.get("lines", []) if str(line).strip()]
        lines = [line for line in lines if not line.startswith(_NODE_DEATH_NOTICES)]
        if lines:
            original({**data, "lines": lines}, *args, **kwargs)

    printer.__camscope__ = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = printer

    def restore() -> None:
        if ray_worker.print_to_stdstream is printer:
            ray_worker.print_to_stdstream = original

    return restore


def _shutdown(ray: Any) -> None:
    """Stop (or leave) Ray; then end the processes of a private local instance that outlive it."""
    node = getattr(getattr(ray, "_private", None), "worker", None)
    node = getattr(node, "_global_node", None)
    before: dict[int, bytes] = {}
    with contextlib.suppress(Exception):  # a private attribute of Ray's: best effort
        for infos in node.all_processes.values() if node is not None else ():
            for info in infos:
                before[info.process.pid] = _cmdline(info.process.pid)
                before.update(_descendants(info.process.pid))
    ray.shutdown()
    for pid, cmdline in before.items():  # Ray's agents can outlive their raylet by minutes
        if _cmdline(pid) == cmdline:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _descendants(pid: int) -> dict[int, bytes]:
    """Every process below ``pid`` with its command line (Linux /proc; elsewhere: none)."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, bytes] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = _cmdline(child)
            todo.append(child)
    return found


def _chain_text(exc: BaseException) -> str:
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 10:
        parts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
