"""Metric parameters declared once as a dataclass (camscope.metrics.params)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import pytest

from camscope.core.errors import MetricInputError
from camscope.metrics.params import declared, keywords, positive_int
from camscope.metrics.registry import Column, get_metric, register_metric, unregister_metric


@dataclass(frozen=True)
class _Shared:
    abs: bool = False
    batch_size: int = 64

    def __post_init__(self) -> None:
        positive_int(self.batch_size, "batch_size")


@dataclass(frozen=True)
class _Params(_Shared):
    steps: int = 3


@keywords(_Params)
def _metric(model: object, inputs: object, maps: object, targets: object = None, p: _Params = _Params()) -> tuple:
    return model, inputs, maps, targets, p


def test_call_builds_the_dataclass_from_keywords() -> None:
    out = _metric("m", "x", "a", steps=5)
    assert out[:4] == ("m", "x", "a", None)
    assert out[4] == _Params(abs=False, batch_size=64, steps=5)
    assert _metric("m", "x", "a", targets=[1], abs=True)[3:] == ([1], _Params(abs=True, steps=3))


def test_public_signature_lists_the_fields_keyword_only() -> None:
    params = inspect.signature(_metric).parameters
    assert list(params) == ["model", "inputs", "maps", "targets", "abs", "batch_size", "steps"]
    assert params["steps"].kind is inspect.Parameter.KEYWORD_ONLY and params["steps"].default == 3
    assert params["targets"].default is None
    assert declared(_metric) == ("abs", "batch_size", "steps")
    assert declared(lambda maps: maps) == ()


def test_unknown_keyword_and_bad_value_are_one_line() -> None:
    with pytest.raises(
        MetricInputError, match=r"_metric takes no parameter 'stpes'; its parameters: abs, batch_size, steps"
    ):
        _metric("m", "x", "a", stpes=2)
    with pytest.raises(MetricInputError, match="batch_size must be a positive integer, got 0"):
        _metric("m", "x", "a", batch_size=0)
    with pytest.raises(MetricInputError, match="missing a required argument"):
        _metric("m", "x")


def test_registry_reads_the_declared_parameters() -> None:
    metric = register_metric("_params_probe", _metric, [Column("_params_probe", True)])
    try:
        assert metric.params == ("abs", "batch_size", "steps")
        assert get_metric("_params_probe").takes("steps") and not metric.takes("step")
    finally:
        unregister_metric("_params_probe")
