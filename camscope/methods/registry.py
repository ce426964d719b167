"""Method names → classes, so the CLI, sweep configs and the API all say ``"gradcam"``.

A method class declares what it is on the class itself, so callers read declarations instead of
inspecting signatures or special-casing names:

- ``params``: the keyword parameters its constructor takes after ``(model, target_layers,
  reshape_transform)`` — what a sweep config or ``explain(..., **kwargs)`` may set;
- ``takes_layers``: False for methods that choose their own layers (FullGrad: every bias layer) —
  they are still constructed as ``cls(model, target_layers, reshape_transform, **params)`` and
  ignore the layers.

Registration checks ``params`` against the constructor once, so a declaration cannot drift.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from camscope.core.registry import Registry

if TYPE_CHECKING:
    from camscope.methods.base import BaseCAM

METHODS: Registry[type[BaseCAM]] = Registry("method")

C = TypeVar("C", bound="type[BaseCAM]")

#: The constructor's leading positional parameters every method shares.
COMMON_PARAMS = ("model", "target_layers", "reshape_transform")


def register_method(name: str, *aliases: str) -> Callable[[C], C]:
    """Class decorator: register a method under ``name`` (its canonical name) and aliases.

    A name or alias that is already registered raises :class:`~camscope.core.errors.NameTakenError`.
    """

    def decorate(cls: C) -> C:
        _check_declared_params(cls)
        METHODS.add(name, cls, *aliases)
        cls.name = name
        return cls

    return decorate


def _check_declared_params(cls: type[BaseCAM]) -> None:
    signature = inspect.signature(cls.__init__).parameters
    taken = [p for p in list(signature)[1:] if p not in COMMON_PARAMS]
    if tuple(taken) != tuple(cls.params):
        raise TypeError(
            f"{cls.__name__}.params declares {tuple(cls.params)} but its constructor takes {tuple(taken)} "
            f"after {COMMON_PARAMS}: set `params = {tuple(taken)}` on the class"
        )


def method_names() -> list[str]:
    """Canonical names of every registered method."""
    return METHODS.names()


def get_method(name: str) -> type[BaseCAM]:
    """The method class for a name (case, '_' and '-'-variants of the aliases accepted)."""
    return METHODS.get(name)
