"""Metric names → declared metrics, so the CLI, sweeps, the report and the API all read one record.

A :class:`Metric` says what it is instead of leaving callers to inspect its function: the keyword
parameters a caller may set, whether it takes the model's normalisation (``mean``/``std``), whether it
needs ground truth, and its output :class:`Column` s — each with its direction (is higher better?) and,
where the value is the area under a per-image curve, the curve's name and x axis.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from camscope.core.capture import model_lock
from camscope.core.errors import MetricInputError
from camscope.core.registry import Registry
from camscope.metrics.params import declared

#: Positional inputs of a model-based metric, and of a ground-truth (localization) metric.
MODEL_INPUTS = ("model", "inputs", "maps", "targets")
GROUND_TRUTH_INPUTS = ("maps", "ground_truth")
MAP_INPUTS = ("maps",)  # metrics of the maps alone (complexity)
IMAGE_STATS = ("mean", "std")

#: Curves of one result keyed by column: (x values, curves (N, K)).
CurvePoints = dict[str, tuple[list[float], np.ndarray]]


@dataclass(frozen=True)
class Column:
    """One output column of a metric (a key of its result's ``summary()``)."""

    name: str
    higher_is_better: bool
    curve: str | None = None  # name of the per-image curve this value summarises ("deletion"), if any
    curve_x: str = ""  # what the curve's x axis measures


@dataclass(frozen=True)
class Metric:
    """A registered metric with one calling convention for the CLI and sweeps.

    ``metric(model, inputs, maps, targets, ground_truth=..., **kwargs)`` returns the metric's result
    (a ``maps_only`` metric is handed the maps alone, a ground-truth metric the maps and ground truth),
    whose ``summary()`` maps column names to per-image values (N,); results of metrics with curves
    also have ``curve_points(pixels)`` (see :meth:`curves`).
    """

    name: str
    func: Callable[..., Any]
    columns: tuple[Column, ...]
    params: tuple[str, ...] = ()  # keyword parameters a caller may set
    needs_ground_truth: bool = False
    image_stats: bool = False  # takes the model's normalisation as ``mean`` / ``std``
    description: str = ""
    maps_only: bool = False  # a property of the maps alone: no model, inputs or targets

    @property
    def inputs(self) -> tuple[str, ...]:
        """The positional inputs its function takes."""
        if self.needs_ground_truth:
            return GROUND_TRUTH_INPUTS
        return MAP_INPUTS if self.maps_only else MODEL_INPUTS

    @property
    def has_curves(self) -> bool:
        return any(c.curve for c in self.columns)

    def takes(self, keyword: str) -> bool:
        """Whether the metric accepts ``keyword`` (its parameters, and ``mean``/``std`` if it takes them)."""
        return keyword in self.params or (self.image_stats and keyword in IMAGE_STATS)

    def default(self, keyword: str) -> Any:
        """The default of one of its keyword parameters (None where it has none, or no such parameter)."""
        parameter = inspect.signature(self.func).parameters.get(keyword)
        return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default

    def accepted(self, **candidates: Any) -> dict[str, Any]:
        """The candidates this metric takes (a caller's shared settings, filtered per metric)."""
        return {k: v for k, v in candidates.items() if self.takes(k)}

    def __call__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        maps: np.ndarray | torch.Tensor,
        targets: Any = None,
        *,
        ground_truth: Any = None,
        **kwargs: Any,
    ) -> Any:
        if self.needs_ground_truth:
            if ground_truth is None:
                raise MetricInputError(f"metric {self.name!r} needs ground truth (boxes or masks)")
            return self.func(maps, ground_truth, **kwargs)
        if self.maps_only:  # no model: nothing to lock
            return self.func(maps, **kwargs)
        with model_lock(model):  # another thread's hooks on this model must not see these passes
            return self.func(model, inputs, maps, targets, **kwargs)

    def curves(self, result: Any, pixels: int) -> CurvePoints:
        """The result's curves keyed by column, x in [0, 1] (``pixels``: pixels per image)."""
        return result.curve_points(pixels) if self.has_curves else {}


METRICS: Registry[Metric] = Registry("metric")
_COLUMNS: dict[str, Column] = {}


def register_metric(
    name: str,
    func: Callable[..., Any],
    columns: Sequence[Column],
    *,
    params: Sequence[str] | None = None,
    needs_ground_truth: bool = False,
    image_stats: bool = False,
    description: str = "",
    aliases: Sequence[str] = (),
    maps_only: bool = False,
) -> Metric:
    """Register ``func`` as metric ``name``; a taken name, alias or column raises ``NameTakenError``.

    ``func`` is called ``func(model, inputs, maps, targets, **kw)``, or ``func(maps, ground_truth,
    **kw)`` with ``needs_ground_truth``, ``func(maps, **kw)`` with ``maps_only``; its keyword
    parameters must be exactly ``params`` (plus ``mean``/``std`` with ``image_stats``) — checked here, once.
    ``params`` None: those a ``@keywords`` dataclass declares (:mod:`camscope.metrics.params`), else none.
    """
    keywords = declared(func) if params is None else tuple(params)
    metric = Metric(name, func, tuple(columns), keywords, needs_ground_truth, image_stats, description, maps_only)
    _check_declaration(metric)
    from camscope.core.errors import NameTakenError

    clash = [c.name for c in metric.columns if c.name in _COLUMNS]
    if clash:
        raise NameTakenError(f"metric {name!r}: column(s) {', '.join(clash)} already belong to another metric")
    METRICS.add(name, metric, *aliases)
    _COLUMNS.update({c.name: c for c in metric.columns})
    return metric


def unregister_metric(name: str) -> None:
    """Remove a metric and its columns (tests that register a temporary metric)."""
    if name in METRICS:
        for column in METRICS.get(name).columns:
            _COLUMNS.pop(column.name, None)
    METRICS.remove(name)


def _check_declaration(metric: Metric) -> None:
    keywords = [p for p in inspect.signature(metric.func).parameters if p not in metric.inputs]
    listed = [*metric.params, *(IMAGE_STATS if metric.image_stats else ())]
    if sorted(keywords) != sorted(listed):
        raise TypeError(
            f"metric {metric.name!r} declares parameters {sorted(listed)} but "
            f"{getattr(metric.func, '__name__', metric.func)} takes {sorted(keywords)}"
        )
    if not metric.columns:
        raise TypeError(f"metric {metric.name!r} declares no output columns")


def get_metric(name: str) -> Metric:
    """The registered metric called ``name`` (see :data:`METRICS`)."""
    return METRICS.get(name)


def metric_names() -> list[str]:
    return METRICS.names()


def column(name: str) -> Column | None:
    """The declaration of an output column (``"deletion_auc"``), None for a column no metric declares."""
    return _COLUMNS.get(name)


def higher_is_better(column_name: str) -> bool:
    """Direction of a column; columns no registered metric declares count as higher-is-better."""
    declared = _COLUMNS.get(column_name)
    return True if declared is None else declared.higher_is_better
