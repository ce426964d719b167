"""Method names → classes, so the CLI, sweep configs and the API all say ``"gradcam"``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from camscope.errors import UnknownNameError

if TYPE_CHECKING:
    from camscope.methods.base import BaseCAM

_METHODS: dict[str, type[BaseCAM]] = {}
_ALIASES: dict[str, str] = {}

C = TypeVar("C", bound="type[BaseCAM]")


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")


def register_method(name: str, *aliases: str) -> Callable[[C], C]:
    """Class decorator: register a method under ``name`` (its canonical name) and aliases."""

    def decorate(cls: C) -> C:
        cls.name = name
        _METHODS[name] = cls
        for alias in (name, *aliases):
            _ALIASES[_key(alias)] = name
        return cls

    return decorate


def method_names() -> list[str]:
    """Canonical names of every registered method."""
    return list(_METHODS)


def get_method(name: str) -> type[BaseCAM]:
    """The method class for a name (case, '_' and '-'-variants of the aliases accepted)."""
    canonical = _ALIASES.get(_key(name))
    if canonical is None:
        raise UnknownNameError(f"unknown method {name!r}; known methods: {', '.join(method_names())}")
    return _METHODS[canonical]
