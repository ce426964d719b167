"""Command-line options that several subcommands share, defined once."""

from __future__ import annotations

import argparse
from typing import Any

from camscope.cli.outputs import nonnegative_int
from camscope.devices import DEVICE_CHOICES


def add_device_option(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--device auto|cpu|cuda[:i]``; checked with :func:`camscope.devices.check_device` when used."""
    parser.add_argument("--device", default=default, help=f"where models run: {DEVICE_CHOICES} (default {default})")


def parse_target(text: str | None, model: Any) -> Any:
    """``--target``: None, a class index or name, ``embedding``, ``similarity:REF`` (a SimilarityTarget) or,
    for a detector, ``box:X1,Y1,X2,Y2`` (the detection at that box, in the model's input pixels)."""
    if text is None or text == "embedding":
        return text
    kind, _, ref = text.partition(":")
    if kind == "similarity" and ref:
        from camscope.api import embed
        from camscope.data import load_image
        from camscope.targets import SimilarityTarget

        return SimilarityTarget(embed(model, load_image(ref))[0], kind="cosine")
    if kind == "box" and ref:
        from camscope.targets import BoxScoreTarget

        return BoxScoreTarget(None, [_box(ref)])
    if text.isdigit():
        return int(text)
    from camscope.errors import TargetError
    from camscope.models import get_spec

    try:
        return get_spec(model).parse_class(text)
    except TargetError as exc:
        raise TargetError(f"--target {exc}") from None


def _box(text: str) -> list[float]:
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or box[0] >= box[2] or box[1] >= box[3]:
        raise argparse.ArgumentTypeError(f"box:{text} is not a box: give box:X1,Y1,X2,Y2 with X1 < X2 and Y1 < Y2")
    return box


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
