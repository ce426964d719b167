"""Command-line options that several subcommands share, defined once."""

from __future__ import annotations

import argparse
from typing import Any

from camscope.cli.outputs import nonnegative_int
from camscope.core.devices import DEVICE_CHOICES


def add_device_option(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--device auto|cpu|cuda[:i]``; checked with :func:`camscope.core.devices.check_device` when used."""
    parser.add_argument("--device", default=default, help=f"where models run: {DEVICE_CHOICES} (default {default})")


def parse_target(text: str | None, model: Any) -> Any:
    """``--target``: None, a class index or name, ``embedding`` or ``similarity:REF`` (the pipeline's policy)."""
    from camscope.pipeline import target_from_text

    return target_from_text(text, model)


def target_argument(text: str) -> str:
    """argparse type of ``--target``: ``embedding``, ``similarity:REF`` or a class index (``nonnegative_int``)."""
    if text == "embedding" or text.startswith("similarity:"):
        return text
    return str(nonnegative_int(text))
