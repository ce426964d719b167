"""Command-line options that several subcommands share, defined once."""

from __future__ import annotations

import argparse

from camscope.devices import DEVICE_CHOICES


def add_device_option(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """``--device auto|cpu|cuda[:i]``; checked with :func:`camscope.devices.check_device` when used."""
    parser.add_argument("--device", default=default, help=f"where models run: {DEVICE_CHOICES} (default {default})")
