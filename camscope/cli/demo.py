"""``camscope demo``: the main job, offline — the mini zoo × the main CAM methods × generated images with
known objects → a results store and a self-contained HTML report (its path is the last line printed)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from camscope.cli.options import add_device_option
from camscope.core.errors import CamscopeError


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the preset mini-zoo sweep and write its HTML report", description=__doc__)
    p.add_argument("--out", default="camscope_demo", help="folder for results and report (default camscope_demo/)")
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="run the minis untrained (a wiring/timing check; every output says so)",
    )
    p.add_argument("--images", type=int, help="number of generated images (default: the preset's)")
    p.add_argument("--methods", help="comma-separated methods (default: the preset's main methods)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camscope.core.devices import check_device
    from camscope.models.mini import MINI_MODELS
    from camscope.report import build_report
    from camscope.sweep import ResultsStore, parse_config, run_sweep
    from camscope.sweep.presets import available_mini_models, demo_config_dict

    check_device(args.device)
    start = time.perf_counter()
    models, missing = available_mini_models(args.random_weights)
    for name, why in missing.items():
        print(f"missing mini model {name}: {why}")
    if not models:
        raise CamscopeError(f"none of the {len(MINI_MODELS)} mini models can run; see the lines above")
    out = Path(args.out)
    results = out / "results"
    raw = demo_config_dict(results.absolute(), models, args.random_weights, device=args.device)
    if args.images:
        raw["images"]["source"] = f"synthetic:{args.images}"
    if args.methods:
        raw["methods"] = [m.strip() for m in args.methods.split(",") if m.strip()]
    config = parse_config(raw, source="camscope demo")
    store = ResultsStore(results)
    if store.exists and store.metadata().get("config_hash") != config.hash():
        # the demo's own folder, from another model set or version: start it again
        store.clear()
        (results / "run.json").unlink()
    print(
        f"demo: {len(models)} mini model(s) x {len(config.methods)} methods x "
        f"{config.images.synthetic} generated images -> {results}"
    )
    run_sweep(config, resume=True, progress=not args.no_progress)
    report = build_report(results, out / "report.html")
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    print(report.absolute())
    return 0
