"""Effective rank of the shipped minis' pooled features: the partial-collapse alarm of the probe records.

Reproduces the ranks quoted in ``benchmarks/results/mini_recipes.md`` for models whose records
predate ``feature_effective_rank``::

    python -m camscope_lab.experiments.mini_feature_rank [MODEL ...] [--images 4096]
    git show dac4571:camscope/zoo_weights/mini_dino_xcit.safetensors > /tmp/old.safetensors
    python -m camscope_lab.experiments.mini_feature_rank mini_dino_xcit --weights /tmp/old.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from camscope.models import mini_archs as backbones
from camscope.models.weights import PACKAGED_DIR
from camscope_lab.config import CONFIGS
from camscope_lab.probe import effective_rank, probe_features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", metavar="MODEL", help="default: all nine")
    parser.add_argument("--images", type=int, default=4096, help="probe scenes (run seed 0)")
    parser.add_argument("--weights", type=Path, help="another weights file of the one MODEL named")
    args = parser.parse_args()
    names = args.models or list(CONFIGS)
    if unknown := [n for n in names if n not in CONFIGS]:
        parser.error(f"not a mini model: {', '.join(unknown)}")
    if args.weights and len(names) != 1:
        parser.error("--weights needs exactly one MODEL")
    print("| model | effective rank |\n|---|---|")
    for name in names:
        model = backbones.build(CONFIGS[name].arch)
        model.load_state_dict(load_file(args.weights or PACKAGED_DIR / f"{name}.safetensors"))
        with torch.inference_mode():
            feats, _ = probe_features(model, args.images, 0)
        print(f"| {name} | {effective_rank(feats):.1f} |", flush=True)


if __name__ == "__main__":
    main()
