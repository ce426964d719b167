"""``camscope report RESULTS_DIR``: a self-contained HTML report (opens offline) of a sweep's results."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="write a self-contained HTML report of sweep results", description=__doc__)
    p.add_argument("results", metavar="RESULTS_DIR", help="a sweep's results folder (its config's output)")
    p.add_argument("--out", help="HTML file to write (default RESULTS_DIR/report.html)")
    p.add_argument("--metaeval", metavar="DIR", help="a `camscope metaeval` output folder: adds its section")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camscope.cli.outputs import check_file
    from camscope.report import build_report

    check_file(args.out or f"{args.results}/report.html", "report")
    path = build_report(args.results, args.out, args.metaeval)
    print(path)
    return 0
