"""``camscope train-mini``: train the packaged mini zoo (or one of its models) from scratch on CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from camscope.errors import UnknownNameError


def register(subparsers: argparse._SubParsersAction) -> None:
    from camscope.lab.train import CONFIGS, WEIGHTS_DIR

    parser = subparsers.add_parser(
        "train-mini",
        help="train the mini zoo on generated images (CPU, seeded)",
        description="Train mini models on freshly generated synthetic images and write NAME.safetensors "
        "+ NAME.json (accuracy, steps, time, config) for each. Models: " + ", ".join(CONFIGS) + ".",
    )
    parser.add_argument("--model", default="all", help="a mini model name, or 'all' (default)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help=f"output folder (default {WEIGHTS_DIR})")
    parser.add_argument("--minutes", type=float, default=None, help="training budget per model (default: per model)")
    parser.add_argument("--steps", type=int, default=None, help="exact optimiser steps (replays a recorded run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camscope.lab.train import CONFIGS, train

    names = list(CONFIGS) if args.model == "all" else [args.model]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise UnknownNameError(f"unknown mini model {unknown[0]!r}; choose from: all, {', '.join(CONFIGS)}")
    for name in names:
        record = train(name, args.out, minutes=args.minutes, steps=args.steps, seed=args.seed, threads=args.threads)
        extra = f", linear probe {record['test_accuracy']}%" if record["training"] != "supervised" else ""
        print(
            f"{name}: test accuracy {record['test_accuracy']}% on {record['test_images']} images{extra}; "
            f"object removed {record['counterfactual_accuracy']}%; {record['steps']} steps in "
            f"{record['train_seconds']} s -> {args.out / record['weights']}"
        )
    return 0
