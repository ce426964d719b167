"""Metric keyword parameters, declared once per metric family as a frozen dataclass.

The metrics of a family share most of Quantus's keyword parameters (``abs``, ``normalise``,
``perturb_baseline``, ``explain_func``, ``seed``, ``batch_size`` …). Written into every function's
signature and again into its registration, one list would be repeated a dozen times and could drift.
Here a dataclass declares them — names, defaults and range checks (in ``__post_init__``) — and
:func:`keywords` turns a function written as ``f(model, inputs, maps, targets, p)`` into the public
``f(model, inputs, maps, targets, *, <the dataclass's fields>)``::

    @dataclass(frozen=True)
    class PixelFlippingParams(FaithfulnessParams):
        features_in_step: int = 1

    @keywords(PixelFlippingParams)
    def pixel_flipping(model, inputs, maps, targets, p: PixelFlippingParams) -> FaithfulnessResult: ...

    pixel_flipping(model, x, maps, y, features_in_step=4)   # Quantus's call, unchanged

The public signature (``help()``, :func:`inspect.signature`, the registry's declaration check) lists the
fields with their defaults, and ``register_metric`` reads their names from it (:func:`declared`).
An unknown keyword or a value out of range is one clear line (:class:`MetricInputError`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from camscope.core.errors import MetricInputError
from camscope.data.imagenet import IMAGENET_MEAN, IMAGENET_STD

R = TypeVar("R")

_PARAMS_ATTRIBUTE = "__metric_params__"


def keywords(params: type[Any]) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Decorate ``f(..., p)`` (``p`` last) into ``f(..., *, <fields of params>)``."""
    if not dataclasses.is_dataclass(params):
        raise TypeError(f"{params.__name__} is not a dataclass")
    fields = dataclasses.fields(params)
    names = {f.name for f in fields}

    def decorate(func: Callable[..., R]) -> Callable[..., R]:
        inner = inspect.signature(func)
        leading = inspect.Signature(list(inner.parameters.values())[:-1])
        keyword_only = [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=_default(f), annotation=f.type)
            for f in fields
        ]
        public = inner.replace(parameters=[*leading.parameters.values(), *keyword_only])

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> R:
            given = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
            unknown = sorted(set(kwargs) - set(leading.parameters))
            if unknown:
                raise MetricInputError(
                    f"{func.__name__} takes no parameter {', '.join(map(repr, unknown))}; "
                    f"its parameters: {', '.join(f.name for f in fields)}"
                )
            try:
                bound = leading.bind(*args, **kwargs)
            except TypeError as exc:
                raise MetricInputError(f"{func.__name__}: {exc}") from None
            bound.apply_defaults()
            return func(*bound.args, params(**given))

        call.__signature__ = public  # type: ignore[attr-defined]  # read by inspect.signature
        setattr(call, _PARAMS_ATTRIBUTE, params)
        return call

    return decorate


def declared(func: Callable[..., Any]) -> tuple[str, ...]:
    """The keyword parameters a :func:`keywords`-decorated metric takes; () for an undecorated function
    (whose keywords ``register_metric`` then takes from its ``params=``). The :class:`ImageStats` fields
    are left out: the registry lists the model's normalisation apart (``image_stats``)."""
    params = getattr(func, _PARAMS_ATTRIBUTE, None)
    if params is None:
        return ()
    stats = {f.name for f in dataclasses.fields(ImageStats)} if issubclass(params, ImageStats) else set()
    return tuple(f.name for f in dataclasses.fields(params) if f.name not in stats)


def takes_image_stats(func: Callable[..., Any]) -> bool:
    """Whether a :func:`keywords`-decorated metric takes the model's normalisation (:class:`ImageStats`)."""
    params = getattr(func, _PARAMS_ATTRIBUTE, None)
    return params is not None and issubclass(params, ImageStats)


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return inspect.Parameter.empty


def positive_int(value: object, name: str) -> int:
    """``value`` as an int ≥ 1, else one line naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise MetricInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# Groups of parameters several families share. A family's dataclass inherits the groups it takes and
# redeclares a field where Quantus's default differs for that metric (the field keeps its place).


@dataclass(frozen=True)
class Batched:
    """How many perturbed or re-explained inputs go through the model at once."""

    batch_size: int = 64

    def __post_init__(self) -> None:
        positive_int(self.batch_size, "batch_size")


@dataclass(frozen=True)
class MapReading(Batched):
    """How the maps are read before scoring: made absolute, divided by their largest magnitude."""

    abs: bool = False
    normalise: bool = True


@dataclass(frozen=True)
class Reexplaining(MapReading):
    """Metrics that explain again (perturbed inputs, randomised models): with what, from which seed."""

    explain_func: str | Callable[..., Any] | None = None
    explain_func_kwargs: Mapping[str, Any] | None = None
    seed: int | None = None


@dataclass(frozen=True)
class ImageStats:
    """The model's input normalisation, for metrics that work in image space (black, the dataset mean)."""

    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
