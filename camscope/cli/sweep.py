"""``camscope sweep CONFIG``: models × methods × images × metrics → a resumable Parquet results store."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import signal
import sys
from typing import Any

#: options that only the Ray engine reads: given with ``--engine local`` they are an error, not ignored
_RAY_ONLY = ("address", "num_cpus", "connect_timeout")


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a models x methods x images x metrics sweep (resumable; local or Ray)",
        description=__doc__ + " The config format is described in camscope/sweep/config.py and examples/*.toml. "
        "Exit status: 0 every task computed; 1 finished, with failed entries (listed; their rows say why); "
        "2 could not run (bad config or option, folder in use, no Ray cluster); 130 interrupted (Ctrl-C, "
        "SIGTERM; finished tasks are kept, --resume continues).",
    )
    p.add_argument("config", metavar="CONFIG", help="sweep config (TOML)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="where tasks run (default local)")
    p.add_argument("--resume", action="store_true", help="continue a sweep whose results folder already has tasks")
    p.add_argument(
        "--output",
        help="results folder, relative to the current folder (overrides the config's output, "
        "which is relative to the config file's folder)",
    )
    p.add_argument(
        "--threads",
        type=_positive(int),
        help="torch threads per task, on either engine (default: every core for local, the actor's CPU share "
        "for Ray); the same count on both engines gives bit-identical numbers",
    )
    p.add_argument(
        "--address",
        help="ray engine: join a running cluster, HOST:PORT (the head's GCS port) or 'auto' (the cluster "
        "`ray start` started on this machine); default: start a private local Ray instance, stopped at the end",
    )
    p.add_argument(
        "--num-cpus", type=_positive(int), help="ray engine: CPUs of the private local instance (default: all)"
    )
    p.add_argument(
        "--connect-timeout",
        type=_positive(float),
        metavar="SECONDS",
        # the default is the engine's DEFAULT_CONNECT_TIMEOUT (not imported: `camscope --help` stays light)
        help="ray engine: give up reaching the cluster after this long (default 30)",
    )
    p.add_argument("--check", action="store_true", help="only validate the config and list the tasks")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM ends a sweep like Ctrl-C: finished tasks are kept, the engine and the lock are released."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _exit_hard_if_stuck(exc: BaseException) -> None:
    """After a Ray connect given up inside Ray's C++ client, end with ``os._exit`` once the error line is
    printed: a normal interpreter shutdown aborts in that thread (SIGABRT instead of exit status 2)."""
    engine = sys.modules.get("camscope.sweep.engines.ray")
    if engine is None or not engine.connect_abandoned():
        return
    code = 130 if isinstance(exc, KeyboardInterrupt) else 2

    def leave() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)

    atexit.register(leave)  # atexit runs last-registered first: before Ray's own exit handler


def run(args: argparse.Namespace) -> int:
    from camscope.cli.outputs import check_folder
    from camscope.core.errors import CamscopeError
    from camscope.sweep import load_config, make_tasks, run_sweep
    from camscope.sweep.image_source import image_ids

    if args.engine != "ray":
        given = [f"--{name.replace('_', '-')}" for name in _RAY_ONLY if getattr(args, name) is not None]
        if given:
            raise CamscopeError(f"{', '.join(given)} only apply to --engine ray")
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
    options: dict[str, Any] = {"threads": args.threads}
    if args.engine == "ray":
        options.update({name: getattr(args, name) for name in _RAY_ONLY})
    print(f"results folder: {config.output} ({origin})")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = run_sweep(config, engine=args.engine, resume=args.resume, progress=not args.no_progress, **options)
    except BaseException as exc:
        _exit_hard_if_stuck(exc)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if result.failures:
        # a sweep with failed entries is not a success: scripts must see it (exit 1; could not run is 2)
        print(
            f"camscope: sweep finished with {len(result.failures)} failed "
            f"entr{'y' if len(result.failures) == 1 else 'ies'} (listed above); exit status 1",
            file=sys.stderr,
        )
        return 1
    return 0
