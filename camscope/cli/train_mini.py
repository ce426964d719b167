"""``camscope train-mini``: train the mini zoo (or one of its models) from scratch on CPU, resumably.

The training lab (:mod:`camscope_lab`) is imported only when the command runs, so every other command,
and ``import camscope``, stays free of it. A run writes only under ``--runs``; ``--ship`` is the separate
step that copies a finished run's model into the zoo of a source checkout.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

from camscope.core.errors import InputError, UnknownNameError
from camscope.models.mini import MINI_MODELS

RUNS_DIR = Path("mini_runs")  # in the current folder: a place the user chose by running the command there


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "train-mini",
        help="train the mini zoo on generated images (CPU, seeded, resumable)",
        description="Train mini models on freshly generated synthetic images. Each run checkpoints to "
        "RUNS/NAME/checkpoint.pt every 4 minutes and when it stops; --resume continues it bit for bit. "
        "When a session ends the model is evaluated and written to RUNS/NAME/last/, and kept as RUNS/NAME/'s "
        "best model if it beats it. Nothing is written outside RUNS: --ship RUNS/NAME copies a run's best model "
        "into the zoo of the source checkout (camscope/zoo_weights/) if it beats the record there. Models: "
        + ", ".join(MINI_MODELS)
        + ".",
    )
    parser.add_argument("--model", default="all", help="a mini model name, or 'all' (default)")
    parser.add_argument(
        "--runs", type=Path, default=RUNS_DIR, help=f"where runs are written (default ./{RUNS_DIR}/NAME)"
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="wall-clock budget of this session: stop cleanly, checkpoint and record (without --steps it also "
        "sizes a new run's schedule)",
    )
    parser.add_argument("--steps", type=int, default=None, help="schedule length in optimiser steps (replays a record)")
    parser.add_argument("--stop-at", type=int, default=None, help="stop once this many steps are done (resumable)")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in RUNS/NAME")
    parser.add_argument(
        "--continue-from",
        type=Path,
        default=None,
        metavar="CHECKPOINT",
        help="start a new schedule (warm restart) from the weights of another run's checkpoint.pt of the same "
        "model, or from a model file NAME.safetensors written by train-mini (its NAME.json beside it: the "
        "backbone weights, and the method's heads from NAME.method.safetensors when it is there; a fresh "
        "optimiser), on the images after that run's; give the new run its own --runs folder",
    )
    parser.add_argument(
        "--fresh-heads",
        action="store_true",
        help="with --continue-from a model file: start the self-supervised method's heads afresh (a head "
        "collapsed to the uniform output is better re-learned)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--ship",
        type=Path,
        default=None,
        metavar="RUN",
        help="train nothing: copy the model of a run folder (RUNS/NAME: its best; RUNS/NAME/last: its last) into "
        "the source checkout's camscope/zoo_weights/ (or --into) if it beats the record there",
    )
    parser.add_argument("--into", type=Path, default=None, help="with --ship: the zoo folder to ship into")
    parser.add_argument("--force", action="store_true", help="with --ship: ship even if not better")
    parser.set_defaults(func=run)


def _lab(module: str) -> ModuleType:
    """A module of the training lab, or one clear error where only the library is installed."""
    import importlib

    try:
        return importlib.import_module(f"camscope_lab.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "camscope_lab":
            raise InputError("the training lab (camscope_lab) is not installed; run from a camscope checkout") from None
        raise


def _ship(args: argparse.Namespace) -> int:
    training = (args.model != "all", args.resume, args.continue_from, args.fresh_heads, args.minutes, args.steps)
    if any(training) or args.stop_at is not None:
        raise InputError("--ship copies a finished run; it takes no training options (--model, --steps, --resume, ...)")
    name, shipped = _lab("ship").ship(args.ship, args.into, args.force)
    zoo = args.into or _lab("ship").source_zoo()
    print(f"{name}: shipped to {zoo}" if shipped else f"{name}: not better than the record in {zoo}, not shipped")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.ship is not None:
        return _ship(args)
    if args.into is not None or args.force:
        raise InputError("--into and --force go with --ship")
    names = list(MINI_MODELS) if args.model == "all" else [args.model]
    unknown = [n for n in names if n not in MINI_MODELS]
    if unknown:
        raise UnknownNameError(f"unknown mini model {unknown[0]!r}; choose from: all, {', '.join(MINI_MODELS)}")
    if args.resume and args.continue_from is not None:
        raise InputError("--resume continues this run's own checkpoint; --continue-from starts a new one: choose one")
    if args.fresh_heads and args.continue_from is None:
        raise InputError("--fresh-heads goes with --continue-from (a model file whose heads to leave unread)")
    if args.continue_from is not None and args.model == "all":
        raise InputError("--continue-from needs one --model (the checkpoint's)")
    for option in ("minutes", "steps", "stop_at"):
        value = getattr(args, option)
        if value is not None and value <= 0:
            raise InputError(f"--{option.replace('_', '-')} must be positive, got {value}")
    train = _lab("train").train
    for name in names:
        record = train(
            name,
            args.runs,
            minutes=args.minutes,
            steps=args.steps,
            seed=args.seed,
            threads=args.threads,
            resume=args.resume,
            stop_at=args.stop_at,
            continue_from=args.continue_from,
            fresh_heads=args.fresh_heads,
        )
        extra = f", linear probe {record['test_accuracy']}%" if record["training"] != "supervised" else ""
        state = "finished" if record["complete"] else f"stopped ({record['stopped']}), resume with --resume"
        best = "kept as the run's best" if record["kept_as_best"] else "not better than the run's best"
        print(
            f"{name}: test accuracy {record['test_accuracy']}% on {record['test_images']} images{extra}; "
            f"object removed {record['counterfactual_accuracy']}%; {record['steps']}/{record['schedule_steps']} "
            f"steps in {record['train_seconds']} s, {state}; {best}; in {args.runs / name} "
            f"(ship it: camscope train-mini --ship {args.runs / name})"
        )
    return 0
