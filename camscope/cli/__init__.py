"""The ``camscope`` command line: one dispatcher, one module per subcommand.

Each subcommand module exposes ``register(subparsers)`` which adds its parser and sets
``func=run`` on it; ``run(args) -> int`` does the work. Errors of type :class:`CamscopeError`
are printed as one line (no traceback) with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from camscope.errors import CamscopeError

# Subcommand modules, in the order `camscope --help` lists them.
SUBCOMMANDS: tuple[str, ...] = ("demo", "explain", "evaluate", "zoo", "train_mini", "sweep", "report", "app")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        return int(args.func(args) or 0)
    except CamscopeError as exc:
        print(f"camscope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("camscope: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
