"""Fixtures of the bad-input suite (helpers: tests/reliability/helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.helpers import Run, save_image


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run the command line in-process; returns exit status, stdout and stderr."""
    from camscope.cli import main

    def run(*args: object) -> Run:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return save_image(tmp_path / "cat.png")
