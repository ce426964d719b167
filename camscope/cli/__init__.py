"""The ``camscope`` command line: one dispatcher, one module per subcommand.

Each subcommand module exposes ``register(subparsers)`` which adds its parser and sets
``func=run`` on it; ``run(args) -> int`` does the work. Errors of type :class:`CamscopeError`
are printed as one line (no traceback) with exit status 2; warnings (above all
:class:`~camscope.core.errors.CamscopeWarning`: NaN outputs, constant maps, clipped images) as one line
each on stderr, every distinct message once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from camscope.core.errors import CamscopeError, CamscopeWarning

# Subcommand modules, in the order `camscope --help` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "demo",
    "explain",
    "evaluate",
    "zoo",
    "train_mini",
    "sweep",
    "report",
    "metaeval",
    "app",
)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (``camscope explain: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="camscope",
        description="What vision models look at: CAM methods, faithfulness metrics and reports.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"camscope.cli.{name}")
        except ModuleNotFoundError as exc:  # a subcommand not built yet
            if exc.name == f"camscope.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        with one_line_warnings():
            return int(args.func(args) or 0)
    except CamscopeError as exc:
        print(f"camscope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("camscope: interrupted", file=sys.stderr)
        return 130


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show every warning as one line on stderr (``camscope: warning: ...``), each distinct message once."""
    seen: set[str] = set()

    def show(message: Any, category: type[Warning], *_: Any, **__: Any) -> None:
        text = " ".join(str(message).split())
        if not issubclass(category, CamscopeWarning):
            text = f"{category.__name__}: {text}"
        if text not in seen:
            seen.add(text)
            print(f"camscope: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", CamscopeWarning)
        warnings.showwarning = show
        yield


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
