"""``camscope zoo``: the model zoo, and exactly which weights file each model still needs.

Without arguments: one row per zoo model (family, training, parameters, input size, default
target layer, weights status), then the download list for every missing file. With a model name
(zoo, timm or torchvision): that model in detail, including its preprocessing and the
conversion steps of each file. ``--json`` gives the same facts to scripts.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from camscope.models import ModelSpec, get_spec, list_models, locate_weights
from camscope.models.weights import ENV_VAR, Location, default_destination, how_to_get


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "zoo",
        help="list the model zoo and where each model's weights are",
        description="List the model zoo: architecture, training, input size, default target layer, "
        "and for each weights file where it was found or where to download it from.",
    )
    parser.add_argument("model", nargs="?", help="show one model in detail (zoo, timm or torchvision name)")
    parser.add_argument(
        "--weights",
        metavar="DIR",
        help=f"look for weights only in this folder (default: ${ENV_VAR}, ./pretrained_weights, caches)",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    specs = [get_spec(args.model)] if args.model else [get_spec(name) for name in list_models()]
    entries = [(spec, locate_weights(spec, args.weights)) for spec in specs]
    if args.json:
        payload = [_as_dict(spec, locations) for spec, locations in entries]
        print(json.dumps(payload[0] if args.model else payload, indent=2))
    elif args.model:
        print(_detail(*entries[0]))
    else:
        print(_table(entries))
        missing = _missing_section(entries)
        if missing:
            print()
            print(missing)
    return 0


def _params(spec: ModelSpec) -> str:
    return f"{spec.num_params() / 1e6:.1f}M"


def _layers(spec: ModelSpec) -> str:
    return ", ".join(spec.target_layers) or "inferred"


def _status(locations: list[Location]) -> str:
    if not locations:
        return "no published weights"
    missing = [loc for loc in locations if not loc.found]
    if missing:
        return f"MISSING {len(missing)} of {len(locations)} file{'s' if len(locations) > 1 else ''}"
    places = sorted({loc.where for loc in locations})
    return "found: " + ", ".join(places)


def _table(entries: list[tuple[ModelSpec, list[Location]]]) -> str:
    header = ("MODEL", "FAMILY", "TRAINING", "PARAMS", "INPUT", "TARGET LAYER", "WEIGHTS")
    rows = [
        (
            spec.name,
            spec.family,
            spec.training_label,
            _params(spec),
            f"{spec.input_size[1]}×{spec.input_size[2]}",
            _layers(spec),
            _status(locations),
        )
        for spec, locations in entries
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])


def _missing_section(entries: list[tuple[ModelSpec, list[Location]]]) -> str:
    lines = []
    for spec, locations in entries:
        for loc in locations:
            if not loc.found:
                lines.append(f"  {spec.name}: {loc.file.filename} ({loc.file.role})")
                lines.append(f"      {how_to_get(loc.file)}")
                lines.append(f"      save as  {_expected_path(loc)}")
    if not lines:
        return ""
    intro = (
        f"Missing weights: download each file and save it under its official name in {default_destination()} "
        f"(or a folder named by ${ENV_VAR}, or pass --weights DIR):"
    )
    return "\n".join([intro, *lines])


def _expected_path(loc: Location) -> str:
    if loc.where.startswith("given") and loc.searched:
        return str(loc.searched[0])
    return str(default_destination() / loc.file.filename)


def _detail(spec: ModelSpec, locations: list[Location]) -> str:
    lines = [
        f"{spec.name} — {spec.family}, {spec.training_label}",
        f"  source         {spec.source or '-'}",
        f"  architecture   {spec.build}  ({_params(spec)} parameters, {spec.num_classes} classes)",
        f"  input          {spec.input_size[0]}×{spec.input_size[1]}×{spec.input_size[2]}",
        f"  preprocessing  {spec.preprocess.describe()}",
        f"  target layer   {_layers(spec)}",
    ]
    if spec.notes:
        lines.append(f"  notes          {spec.notes}")
    lines.append("  weights" if locations else "  weights        no published weights known")
    for loc in locations:
        lines.append(f"    {loc.file.filename} ({loc.file.role})")
        if loc.found:
            lines.append(f"      found ({loc.where}): {loc.path}")
        else:
            lines.append(f"      MISSING: {how_to_get(loc.file)}")
            lines.append(f"               save as  {_expected_path(loc)}")
        if loc.file.convert:
            lines.append(f"      conversion: {' → '.join(repr(step) for step in loc.file.convert)}")
    return "\n".join(lines)


def _as_dict(spec: ModelSpec, locations: list[Location]) -> dict[str, Any]:
    return {
        "name": spec.name,
        "family": spec.family,
        "training": spec.training,
        "ssl_method": spec.ssl_method,
        "params": spec.num_params(),
        "input_size": list(spec.input_size),
        "num_classes": spec.num_classes,
        "target_layers": list(spec.target_layers),
        "preprocessing": {
            "resize": spec.preprocess.resize,
            "crop": list(spec.preprocess.crop),
            "interpolation": spec.preprocess.interpolation,
            "mean": list(spec.preprocess.mean),
            "std": list(spec.preprocess.std),
        },
        "source": spec.source,
        "weights": [
            {
                "filename": loc.file.filename,
                "role": loc.file.role,
                "url": loc.file.url,
                "found": loc.found,
                "path": str(loc.path) if loc.path else None,
                "where": loc.where or None,
                "expected_path": None if loc.found else _expected_path(loc),
            }
            for loc in locations
        ],
    }
