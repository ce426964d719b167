"""Command-line options that several subcommands share, defined once."""

from __future__ import annotations

import argparse
from typing import Any

from camscope.cli.outputs import nonnegative_int
from camscope.core.devices import DEVICE_CHOICES


def add_device_option(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--device auto|cpu|cuda[:i]``; checked with :func:`camscope.core.devices.check_device` when used."""
    parser.add_argument("--device", default=default, help=f"where models run: {DEVICE_CHOICES} (default {default})")


def parse_target(text: str | None, model: Any, image_sizes: list[tuple[int, int]] | None = None) -> Any:
    """``--target``: None, a class index or name, ``embedding``, ``similarity:REF`` or, for a detector,
    ``box:X1,Y1,X2,Y2`` (the pipeline's target policy); its errors name the option.

    A box is in the pixels of each image (``image_sizes``: their (width, height)), so it becomes one target
    per image, each moved onto the model's input.
    """
    from camscope.core.errors import TargetError
    from camscope.pipeline import target_from_text

    try:
        if text is not None and text.startswith("box:") and image_sizes is not None:
            return [target_from_text(text, model, image_size=size) for size in image_sizes]
        return target_from_text(text, model)
    except TargetError as exc:
        raise TargetError(f"--target {exc}") from None


def _box(text: str) -> list[float]:
    from camscope.pipeline import parse_box

    try:
        return parse_box(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def target_argument(text: str) -> str:
    """argparse type of ``--target``: ``embedding``, ``similarity:REF``, ``box:X1,Y1,X2,Y2``, a class index
    (``nonnegative_int``: ``-1`` and ``3.5`` are refused) or a class name (checked once the model is known)."""
    if text == "embedding" or text.startswith("similarity:"):
        return text
    if text.startswith("box:"):
        _box(text[4:])
        return text
    try:
        float(text)
    except ValueError:
        return text  # a class name
    return str(nonnegative_int(text))
