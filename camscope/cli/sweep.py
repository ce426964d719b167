"""``camscope sweep CONFIG``: models × methods × images × metrics → a resumable Parquet results store."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a models x methods x images x metrics sweep (resumable; local or Ray)",
        description=__doc__ + " The config format is described in camscope/sweep/config.py and examples/*.toml. "
        "Exit status: 0 all computed, 1 finished with failed entries, 2 a usage error (bad config, folder in use).",
    )
    p.add_argument("config", metavar="CONFIG", help="sweep config (TOML)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="where tasks run (default local)")
    p.add_argument("--resume", action="store_true", help="continue a sweep whose results folder already has tasks")
    p.add_argument(
        "--output",
        help="results folder, relative to the current folder (overrides the config's output, "
        "which is relative to the config file's folder)",
    )
    p.add_argument("--address", help="Ray cluster address (ray engine; default: start a local Ray instance)")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (ray engine, default: all)")
    p.add_argument("--check", action="store_true", help="only validate the config and list the tasks")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camscope.cli.outputs import check_folder
    from camscope.sweep import load_config, make_tasks, run_sweep
    from camscope.sweep.image_source import image_ids

    config = load_config(args.config, output=args.output)
    check_folder(config.output, "results folder")  # before any model is loaded
    origin = "--output" if args.output else f"output of {args.config}, relative to its folder"
    if args.check:
        tasks = make_tasks(config, len(image_ids(config.images)))
        print(
            f"{args.config}: valid; {len(config.models)} model(s) x {len(config.methods)} method(s) x "
            f"{len(image_ids(config.images))} image(s) -> {len(tasks)} task(s); results in {config.output}"
        )
        return 0
    options = {"address": args.address, "num_cpus": args.num_cpus} if args.engine == "ray" else {}
    print(f"results folder: {config.output} ({origin})")
    result = run_sweep(config, engine=args.engine, resume=args.resume, progress=not args.no_progress, **options)
    if result.failures:
        # a sweep with failed entries is not a success: scripts must see it (exit 1; usage errors are 2)
        print(
            f"camscope: sweep finished with {len(result.failures)} failed "
            f"entr{'y' if len(result.failures) == 1 else 'ies'} (listed above); exit status 1",
            file=sys.stderr,
        )
        return 1
    return 0
