"""``camscope train-mini``: train the packaged mini zoo (or one of its models) from scratch on CPU, resumably."""

from __future__ import annotations

import argparse
from pathlib import Path

from camscope.core.errors import InputError, UnknownNameError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from camscope.lab.train import CONFIGS, RUNS_DIR, WEIGHTS_DIR

    parser = subparsers.add_parser(
        "train-mini",
        help="train the mini zoo on generated images (CPU, seeded, resumable)",
        description="Train mini models on freshly generated synthetic images. Each run checkpoints to "
        "RUNS/NAME/checkpoint.pt every 4 minutes and when it stops; --resume continues it bit for bit. "
        "When a session ends the model is evaluated and written to RUNS/NAME/last/, kept as RUNS/NAME/'s best "
        "record if it beats it, and copied to --out only if it beats the record there. Models: "
        + ", ".join(CONFIGS)
        + ".",
    )
    parser.add_argument("--model", default="all", help="a mini model name, or 'all' (default)")
    parser.add_argument(
        "--out", type=Path, default=WEIGHTS_DIR, help=f"where better models are shipped (default {WEIGHTS_DIR})"
    )
    parser.add_argument("--runs", type=Path, default=RUNS_DIR, help=f"checkpoint folder (default ./{RUNS_DIR}/NAME)")
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camscope.lab.train import CONFIGS, train

    names = list(CONFIGS) if args.model == "all" else [args.model]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise UnknownNameError(f"unknown mini model {unknown[0]!r}; choose from: all, {', '.join(CONFIGS)}")
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
    for name in names:
        record = train(
            name,
            args.out,
            minutes=args.minutes,
            steps=args.steps,
            seed=args.seed,
            threads=args.threads,
            runs=args.runs,
            resume=args.resume,
            stop_at=args.stop_at,
            continue_from=args.continue_from,
            fresh_heads=args.fresh_heads,
        )
        extra = f", linear probe {record['test_accuracy']}%" if record["training"] != "supervised" else ""
        state = "finished" if record["complete"] else f"stopped ({record['stopped']}), resume with --resume"
        where = f"shipped to {args.out}" if record["shipped"] else f"not better than {args.out}, not shipped"
        print(
            f"{name}: test accuracy {record['test_accuracy']}% on {record['test_images']} images{extra}; "
            f"object removed {record['counterfactual_accuracy']}%; {record['steps']}/{record['schedule_steps']} "
            f"steps in {record['train_seconds']} s, {state}; {where}; checkpoint in {args.runs / name}"
        )
    return 0
