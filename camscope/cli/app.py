"""``camscope app``: the interactive explorer in the browser (localhost, offline) — models × methods on an
uploaded image or a generated scene, with faithfulness and localization scores. Needs ``camscope[app]``."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

from camscope.cli.options import add_device_option
from camscope.core.errors import CamscopeError

INSTALL_HINT = "camscope app needs the optional extra: pip install 'camscope[app]'"


def register(sub: Any) -> None:
    p = sub.add_parser("app", help="the interactive explorer in the browser (needs camscope[app])", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--weights", metavar="DIR", help="folder of weights files (default: the zoo's search path)")
    p.add_argument("--max-side", type=int, default=1024, help="downscale uploads above this many px (default 1024)")
    p.add_argument("--workers", type=int, help="requests computed at once (default: one per CPU core)")
    add_device_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camscope.core.devices import check_device

    if importlib.util.find_spec("gradio") is None:
        raise CamscopeError(INSTALL_HINT)
    check_device(args.device)
    if args.weights is not None and not Path(args.weights).is_dir():
        raise CamscopeError(f"--weights {args.weights}: not a folder")
    if not 0 < args.port < 65536:
        raise CamscopeError(f"--port must lie in 1..65535, got {args.port}")
    from camscope.app.session import Explorer
    from camscope.app.ui import serve

    serve(
        Explorer(weights=args.weights, device=args.device, max_side=args.max_side), args.host, args.port, args.workers
    )
    return 0
