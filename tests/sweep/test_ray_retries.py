"""The Ray engine's bookkeeping of lost actors, on a stand-in for Ray (no cluster: fast and exact).

A real node loss is tested in test_ray_faults.py; here each path is forced: an actor lost once (its
unfinished tasks run again, its finished ones are kept), a task whose actor is always lost (recorded as
failed after MAX_ATTEMPTS, the sweep goes on), and the one line printed per lost node.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from camscope.sweep import load_config, make_tasks
from camscope.sweep.engines.ray import MAX_ATTEMPTS, RayEngine
from camscope.sweep.schema import TaskOutput
from tests.sweep.helpers import write_config

ray = pytest.importorskip("ray")


class Lost(ray.exceptions.RayError):
    """What Ray raises for a call whose actor died (ActorDiedError, ActorUnavailableError...)."""


class _Method:
    def __init__(self, actor: _Actor, name: str) -> None:
        self.actor, self.name = actor, name

    def remote(self, arg: Any) -> Any:
        if self.name == "plan":
            self.actor.planned.append(list(arg))
            return None
        ref = _Ref(self.actor, arg)
        self.actor.fake.submitted.append(ref)
        return ref


class _Ref:
    def __init__(self, actor: _Actor, task: Any) -> None:
        self.actor, self.task = actor, task


class _Actor:
    def __init__(self, fake: FakeRay) -> None:
        self.fake, self.dead, self.planned = fake, False, []
        self.plan, self.run = _Method(self, "plan"), _Method(self, "run")


class _ActorClass:
    def __init__(self, fake: FakeRay) -> None:
        self.fake = fake

    def options(self, **_: Any) -> _ActorClass:
        return self

    def remote(self, *_: Any) -> _Actor:
        actor = _Actor(self.fake)
        self.fake.actors.append(actor)
        return actor


class FakeRay:
    """Runs calls in submission order; a call of a dead actor, or of a ``doomed`` task, loses its actor
    (and, with ``node_dies``, the second node)."""

    exceptions = ray.exceptions

    def __init__(self, doomed: dict[str, int], node_dies: bool = False) -> None:
        self.doomed = doomed  # task id -> how many more times running it loses the actor
        self.node_dies = node_dies
        self.actors: list[_Actor] = []
        self.submitted: list[_Ref] = []
        self.computed: list[str] = []
        self.node_alive = True

    def is_initialized(self) -> bool:
        return True

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 2.0}

    def nodes(self) -> list[dict[str, Any]]:
        return [
            {"NodeID": "a" * 56, "Alive": True, "NodeManagerAddress": "10.0.0.1"},
            {"NodeID": "b" * 56, "Alive": self.node_alive, "NodeManagerAddress": "10.0.0.2"},
        ]

    def remote(self, cls: type) -> _ActorClass:
        return _ActorClass(self)

    def wait(self, refs: list[_Ref], num_returns: int = 1, timeout: float | None = None) -> tuple[list, list]:
        ordered = sorted(refs, key=self.submitted.index)
        return ordered[:1], ordered[1:]

    def get(self, ref: _Ref) -> Any:
        if ref.actor.dead:
            raise Lost("The actor died unexpectedly before finishing this task.")
        if self.doomed.get(ref.task.id, 0) > 0:
            self.doomed[ref.task.id] -= 1
            ref.actor.dead = True
            self.node_alive = not self.node_dies
            raise Lost("The actor died unexpectedly before finishing this task.")
        self.computed.append(ref.task.id)
        return ref.task  # stands for its TaskOutput

    def kill(self, actor: _Actor, no_restart: bool = True) -> None:
        actor.dead = True


@pytest.fixture
def make_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``make_engine(fake) -> (engine, tasks, log)``: a RayEngine on ``fake`` for the tiny sweep's 8 tasks."""
    config = load_config(write_config(tmp_path / "sweep.toml"))
    engines: list[RayEngine] = []

    def make(fake: FakeRay) -> tuple[RayEngine, list[Any], io.StringIO]:
        monkeypatch.setitem(sys.modules, "ray", fake)
        log = io.StringIO()
        engines.append(RayEngine(config, out=log))
        return engines[-1], make_tasks(config, 4), log

    yield make
    for engine in engines:
        engine._restore_printer()


def test_a_lost_actor_reruns_only_its_unfinished_tasks(make_engine: Any) -> None:
    fake = FakeRay(doomed={})
    engine, tasks, log = make_engine(fake)
    third = tasks[2]  # mini_resnet's third task: the actor is lost while running it, once
    fake.doomed[third.id] = 1
    outputs = list(engine.run(tasks))
    assert sorted(t.id for t in outputs) == sorted(t.id for t in tasks), "every task once, none lost or doubled"
    assert sorted(fake.computed) == sorted(t.id for t in tasks), "finished tasks were not computed again"
    restarted = [a for a in fake.actors if a.planned and a.planned[0][0] == third]
    assert len(restarted) == 1 and restarted[0].planned[0] == [t for t in tasks[2:4]]
    assert "ray: the worker of mini_resnet was lost (Lost: The actor died" in log.getvalue()
    assert "2 task(s) run again on another worker" in log.getvalue()
    assert all(a.dead for a in fake.actors), "every actor is killed when its model is done"


def test_a_task_that_always_loses_its_actor_is_recorded_failed(make_engine: Any) -> None:
    fake = FakeRay(doomed={}, node_dies=True)
    engine, tasks, log = make_engine(fake)
    doomed = tasks[5]
    fake.doomed[doomed.id] = 99
    outputs = list(engine.run(tasks))
    failed = [o for o in outputs if isinstance(o, TaskOutput)]
    assert len(outputs) == len(tasks) and len(failed) == 1
    rows = failed[0].rows.to_pylist()
    assert failed[0].task == doomed and failed[0].failed == len(doomed.indices) == len(rows)
    assert {r["status"] for r in rows} == {"failed"}
    assert rows[0]["error"].startswith(f"its Ray worker was lost {MAX_ATTEMPTS} times (last: Lost: The actor")
    assert fake.doomed[doomed.id] == 99 - MAX_ATTEMPTS, "bounded: no attempt after the last"
    assert sorted(fake.computed) == sorted(t.id for t in tasks if t != doomed)
    assert log.getvalue().count("ray: lost node 10.0.0.2 (bbbbbbbb)") == 1, log.getvalue()
