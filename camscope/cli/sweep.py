"""``camscope sweep CONFIG``: models × methods × images × metrics → a resumable Parquet results store."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a models x methods x images x metrics sweep (resumable; local or Ray)",
        description=__doc__ + " The config format is described in camscope/sweep/config.py and examples/*.toml.",
    )
    p.add_argument("config", metavar="CONFIG", help="sweep config (TOML)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="where tasks run (default local)")
    p.add_argument("--resume", action="store_true", help="continue a sweep whose results folder already has tasks")
    p.add_argument("--output", help="results folder (overrides the config's output)")
    p.add_argument("--address", help="Ray cluster address (ray engine; default: start a local Ray instance)")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (ray engine, default: all)")
    p.add_argument("--check", action="store_true", help="only validate the config and list the tasks")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camscope.sweep import load_config, make_tasks, run_sweep
    from camscope.sweep.images import image_ids

    config = load_config(args.config, output=args.output)
    if args.check:
        tasks = make_tasks(config, len(image_ids(config.images)))
        print(
            f"{args.config}: valid; {len(config.models)} model(s) x {len(config.methods)} method(s) x "
            f"{len(image_ids(config.images))} image(s) -> {len(tasks)} task(s); results in {config.output}"
        )
        return 0
    options = {"address": args.address, "num_cpus": args.num_cpus} if args.engine == "ray" else {}
    result = run_sweep(config, engine=args.engine, resume=args.resume, progress=not args.no_progress, **options)
    if result.failures:
        print(f"{len(result.failures)} failed entr{'y' if len(result.failures) == 1 else 'ies'}: see above")
    return 0
