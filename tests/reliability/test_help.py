"""Every subcommand's ``--help`` works, and every option its text mentions exists."""

from __future__ import annotations

import argparse
import re

import pytest

from camscope.cli import SUBCOMMANDS, build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_subcommand_is_registered() -> None:
    assert set(_subparsers()) == {name.replace("_", "-") for name in SUBCOMMANDS}


@pytest.mark.parametrize("command", [name.replace("_", "-") for name in SUBCOMMANDS])
def test_help_mentions_only_existing_options(run_cli, command: str) -> None:
    run = run_cli(command, "--help")
    assert run.code == 0 and run.out.startswith("usage: camscope " + command)
    parser = _subparsers()[command]
    known = {s for action in parser._actions for s in action.option_strings}
    mentioned = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", run.out))
    assert mentioned, run.out
    assert mentioned <= known, f"{command} --help mentions {sorted(mentioned - known)}, which do not exist"
    # every option the parser has is documented in the help
    assert known - {"-h"} <= mentioned


def test_top_level_help_lists_every_subcommand(run_cli) -> None:
    run = run_cli("--help")
    assert run.code == 0
    for name in SUBCOMMANDS:
        assert name.replace("_", "-") in run.out
