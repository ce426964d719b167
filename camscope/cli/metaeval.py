"""``camscope metaeval``: how far can each metric be trusted, and what does it cost? Every registered metric on
the mini zoo's generated scenes, against the known answer (the true object mask) — agreement (Kendall τ with
bootstrap intervals), discrimination (oracle > random > inverse), noise resilience and adversary reactivity
(MetaQuantus), forwards and seconds per image. Resumable: run it again to continue; the table, plot and
findings land in OUT/. It runs on the CPU: the minis are small."""

from __future__ import annotations

import argparse
import os
from typing import Any


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(t.strip() for t in text.split(",") if t.strip())


def register(sub: Any) -> None:
    from camscope.metaeval.config import PRESETS

    p = sub.add_parser("metaeval", help="meta-evaluate every registered metric on the mini zoo", description=__doc__)
    p.add_argument("--out", default="camscope_metaeval", help="folder for parts and outputs")
    p.add_argument("--preset", choices=PRESETS, default="full", help="full (default), reduced or quick")
    p.add_argument("--quick", action="store_true", help="the quick preset: 1 model, 4 images, 3 methods (seconds)")
    p.add_argument("--models", help="comma-separated zoo models (default: the preset's)")
    p.add_argument("--methods", help="comma-separated methods (default: every registered one that applies)")
    p.add_argument("--metrics", help="comma-separated metrics (default: every registered one)")
    p.add_argument("--images", type=int, help="number of generated scenes (default: the preset's)")
    p.add_argument("--bootstrap", type=int, help="bootstrap resamples (default: the preset's)")
    p.add_argument("--fresh", action="store_true", help="discard parts of other settings in OUT and start again")
    p.add_argument("--summary-only", action="store_true", help="compute nothing: summarise the parts already in OUT")
    p.add_argument(
        "--jobs",
        type=int,
        default=min(os.cpu_count() or 1, 8),  # each worker holds torch, a mini and its batches
        help="parts computed at once, each in its own process on one torch thread (default: one per core, at "
        "most 8; 1: in this process on torch's threads)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camscope.metaeval.config import preset, with_overrides
    from camscope.metaeval.runner import read_rows, run_metaeval
    from camscope.metaeval.summary import summarize, table_markdown, write_outputs

    config = preset("quick" if args.quick else args.preset, _names(args.models))
    config = with_overrides(
        config,
        methods=_names(args.methods),
        metrics=_names(args.metrics),
        images=args.images,
        bootstrap=args.bootstrap,
    )
    if not args.summary_only:
        run_metaeval(config, args.out, fresh=args.fresh, progress=not args.no_progress, jobs=args.jobs)
    table, meta, seconds = read_rows(args.out)
    summary = summarize(table, meta["settings"], seconds, meta["cpu_seconds"])
    written = write_outputs(summary, args.out)
    print(table_markdown(summary))
    for path in written:
        print(path)
    return 0
