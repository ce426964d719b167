"""Name → entry tables shared by the method and metric registries.

One lookup rule everywhere a user types a name (CLI, sweep config, API): case, ``_``, ``-`` and spaces
do not matter, aliases lead to the canonical name, a typo gets close-match hints, and registering a
name (or alias) that is taken is an error rather than a silent replacement.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

from camscope.core.errors import NameTakenError, UnknownNameError

T = TypeVar("T")


def name_key(name: str) -> str:
    """The form names are compared in: lower case without ``_``, ``-`` or spaces."""
    return name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")


class Registry(Generic[T]):
    """Entries by canonical name, found by any of their aliases (see :func:`name_key`)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "method", "metric": used in messages
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, entry: T, *aliases: str) -> T:
        """Register ``entry`` as ``name``; a taken name or alias raises :class:`NameTakenError`."""
        keys = {name_key(alias) for alias in (name, *aliases)}
        taken = sorted(self._aliases[k] for k in keys if k in self._aliases)
        if name in self._entries or taken:
            owner = name if name in self._entries else taken[0]
            raise NameTakenError(f"{self.kind} name {name!r} (or an alias) is already registered to {owner!r}")
        self._entries[name] = entry
        self._aliases.update(dict.fromkeys(keys, name))
        return entry

    def remove(self, name: str) -> None:
        """Forget ``name`` and its aliases (tests that register a temporary entry)."""
        self._entries.pop(name, None)
        self._aliases = {k: v for k, v in self._aliases.items() if v != name}

    def names(self) -> list[str]:
        """Canonical names in registration order."""
        return list(self._entries)

    def get(self, name: str) -> T:
        canonical = self._aliases.get(name_key(name))
        if canonical is None:
            raise UnknownNameError(self._unknown(name))
        return self._entries[canonical]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def values(self) -> list[T]:
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name_key(name) in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def _unknown(self, name: str) -> str:
        near = difflib.get_close_matches(name_key(name), list(self._aliases), n=3, cutoff=0.6)
        hint = ""
        if near:
            hint = f"; did you mean {', '.join(dict.fromkeys(self._aliases[k] for k in near))}?"
        return f"unknown {self.kind} {name!r}{hint}; known {self.kind}s: {', '.join(self._entries)}"
