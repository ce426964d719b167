"""Short training runs of a mini under a changed recipe, each ending in the record's evaluation.

Named for its first use, the self-supervised recipes; supervised minis take it too (their record's test
accuracy in place of the linear probe). How the mini recipes were chosen
(``benchmarks/results/mini_recipes.md``): the mini model's own config with ``--set key=value`` changes
(any :class:`camscope_lab.config.MiniConfig` field), trained for ``--steps`` with the package's resumable
loop, then evaluated exactly as a shipped record is (test accuracy on ``generate(1000, 7)``, after a
linear probe on frozen features for a self-supervised mini). Nothing is shipped: the run and
its record stay in ``RUNS/recipes/TAG/NAME`` (``--runs``, default ``./mini_runs``), and one JSON line per
run is appended to ``RUNS/recipes/log.jsonl``. ``--resume`` continues a stopped run of the same tag::

    python -m camscope_lab.experiments.mini_ssl_recipes --model mini_mocov3_resnet --tag M1 --steps 1500 \\
        --set pretrain_size=32 global_scale=0.25,1.0

Not a test: a tool for choosing recipes; each run takes minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch

from camscope.core.errors import CamscopeError
from camscope_lab.config import CONFIGS, MiniConfig
from camscope_lab.train import train


def _value(text: str) -> Any:
    """``0.5`` → float, ``32`` → int, ``0.25,1`` → tuple, ``none`` → None, ``true``/``false`` → bool, else text."""
    if "," in text:
        return tuple(float(t) for t in text.split(","))
    lowered = text.lower()
    if lowered in ("none", "true", "false"):
        return {"none": None, "true": True, "false": False}[lowered]
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(CONFIGS), required=True)
    parser.add_argument("--tag", required=True, help="experiment name: its run folder and log key")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config changes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock budget of this session")
    parser.add_argument(
        "--continue-from", type=Path, default=None, help="warm restart from this checkpoint.pt or model file"
    )
    parser.add_argument("--fresh-heads", action="store_true", help="leave a model file's method state unread")
    parser.add_argument("--runs", type=Path, default=Path("mini_runs"), help="where runs and the log are written")
    args = parser.parse_args()

    changes = {k: _value(v) for k, v in (item.split("=", 1) for item in args.set)}
    unknown = set(changes) - {f.name for f in dataclasses.fields(MiniConfig)}
    if unknown:
        sys.exit(f"error: --set {', '.join(sorted(unknown))}: not a MiniConfig field")
    try:
        cfg = dataclasses.replace(CONFIGS[args.model], **changes)
    except CamscopeError as exc:
        sys.exit(f"error: {exc}")
    runs = args.runs / "recipes" / args.tag
    record = train(
        args.model, runs, steps=args.steps, seed=args.seed, resume=args.resume,
        minutes=args.minutes, cfg=cfg, continue_from=args.continue_from, fresh_heads=args.fresh_heads,
    )  # fmt: skip
    line = {
        "tag": args.tag,
        "model": args.model,
        "changes": {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()},
        "continued_from": record["continued_from"],
        "prior_steps": record["prior_steps"],
        "steps": record["steps"],
        "schedule_steps": record["schedule_steps"],
        "batch_size": record["batch_size"],
        "minutes": record["train_minutes"],
        "test_accuracy": record["test_accuracy"],
        "counterfactual_accuracy": record["counterfactual_accuracy"],
        "probe_train_accuracy": record.get("probe_train_accuracy"),
        "feature_effective_rank": record.get("feature_effective_rank"),
        "torch_threads": torch.get_num_threads(),
    }
    with (args.runs / "recipes" / "log.jsonl").open("a") as log:
        log.write(json.dumps(line) + "\n")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
