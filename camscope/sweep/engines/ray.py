"""The Ray engine: the same task function in Ray actors, one model per actor, over a whole cluster.

Why actors and not plain remote functions: loading a model costs more than many tasks, so an actor
loads its model once and runs all of that model's tasks in order (Ray runs an actor's calls in the
order they were submitted, which keeps the worker's shard cache useful). As many actors run at once as
the cluster has slots — one GPU each when it has GPUs, otherwise an equal share of the CPUs — and an
actor is killed when its model is done, freeing the slot for the next model. Outputs return to the
driver, which alone writes the results store: workers need no shared file system.

Install with ``pip install camscope[ray]``. ``address`` joins an existing cluster ("auto" or
"ray://host:10001"); without it a local Ray instance is started (and stopped at the end).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from camscope.core.errors import CamscopeError
from camscope.sweep.config import SweepConfig
from camscope.sweep.schema import TaskOutput
from camscope.sweep.tasks import Task
from camscope.sweep.worker import TaskWorker


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


class RayEngine:
    """Spread tasks over a Ray cluster; see the module docstring."""

    name = "ray"

    def __init__(self, config: SweepConfig, address: str | None = None, num_cpus: int | None = None, **_: Any) -> None:
        try:
            import ray
        except ImportError:
            raise CamscopeError("the ray engine needs Ray: pip install 'camscope[ray]'") from None
        self.ray = ray
        self.config = config
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
            if address:
                kwargs["address"] = address
            elif num_cpus:
                kwargs["num_cpus"] = num_cpus
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise CamscopeError(f"cannot start or reach a Ray cluster ({address or 'local'}): {exc}") from None
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]  # ray's API is unannotated
        self.gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        models = max(1, len(config.models))
        if self.gpus:
            self.slots, self.cpus_per_actor = self.gpus, max(1, cpus // self.gpus)
        else:
            self.slots = min(models, cpus)
            self.cpus_per_actor = max(1, cpus // self.slots)
        self.device = f"ray: {self.slots} actor(s) at once, " + (
            f"1 GPU each ({self.gpus} GPUs)" if self.gpus else f"{self.cpus_per_actor} CPU(s) each"
        )
        self._actor_cls = ray.remote(_ModelActor)

    def _start(self, model: str) -> Any:
        options: dict[str, Any] = {"num_cpus": self.cpus_per_actor}
        if self.gpus:
            options["num_gpus"] = 1
        return self._actor_cls.options(**options, name=None).remote(self.config, self.cpus_per_actor)

    def run(self, tasks: Sequence[Task]) -> Iterator[TaskOutput]:
        ray = self.ray
        by_model: dict[str, list[Task]] = {}
        for task in tasks:
            by_model.setdefault(task.model, []).append(task)
        waiting = list(by_model.items())
        in_flight: dict[Any, tuple[Any, str]] = {}  # object ref -> (actor, model)
        left: dict[str, int] = {}
        actors: dict[str, Any] = {}

        def launch() -> None:
            while waiting and len(actors) < self.slots:
                model, model_tasks = waiting.pop(0)
                actor = self._start(model)
                actors[model] = actor
                left[model] = len(model_tasks)
                actor.plan.remote(model_tasks)  # before its runs: an actor runs its calls in order
                for task in model_tasks:
                    in_flight[actor.run.remote(task)] = (actor, model)

        try:
            launch()
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                ref = ready[0]
                actor, model = in_flight.pop(ref)
                output = ray.get(ref)
                left[model] -= 1
                if left[model] == 0:
                    ray.kill(actors.pop(model))
                    launch()
                yield output
        finally:
            for actor in actors.values():
                ray.kill(actor)

    def close(self) -> None:
        if self._owns_ray and self.ray.is_initialized():
            self.ray.shutdown()
