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
    """``--target``: None, a class index, ``embedding`` or ``similarity:REF`` (a SimilarityTarget)."""
    if text is None or text == "embedding":
        return text
    kind, _, ref = text.partition(":")
    if kind == "similarity" and ref:
        from camscope.api import embed
        from camscope.core.targets import SimilarityTarget
        from camscope.data import load_image

        return SimilarityTarget(embed(model, load_image(ref))[0], kind="cosine")
    return int(text)


def target_argument(text: str) -> str:
    """argparse type of ``--target``: ``embedding``, ``similarity:REF`` or a class index (``nonnegative_int``)."""
    if text == "embedding" or text.startswith("similarity:"):
        return text
    return str(nonnegative_int(text))
