"""What a frozen mini backbone encodes: linear probes for the class (shape), the texture and the background.

    python -m camscope_lab.experiments.mini_probe_factors --model mini_xcit  # a shipped model
    python -m camscope_lab.experiments.mini_probe_factors --model mini_mocov3_vit \
        --checkpoint mini_runs/NAME/checkpoint.pt
    python -m camscope_lab.experiments.mini_probe_factors --model mini_dino_xcit \
        --background-pool 0  # class and texture only

Why: in the synthetic scenes the class is carried by the shape alone, and the texture is drawn
independently of it (:func:`camscope.data.synthetic.scene_factors`). Two views of one scene share the
object's texture, so a self-supervised model can tell instances apart by texture without learning shape;
a probe for each factor on the same frozen features says which one the representation holds. Both probes
are the records' own (:func:`camscope_lab.probe.fit_linear`) on the run seed's probe images, tested on the
records' test set.

The self-supervised minis pre-train on scenes whose backgrounds come from a fixed pool
(``background_pool``). A pool stops the background from identifying the *image*, but not from telling
apart the 16 groups of a pool of 16: that is 4 of the 8 bits a batch of 256 needs. The ``background``
row is a probe for which pooled background a scene has, fitted and tested on pooled scenes (same seeds).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from camscope.data.synthetic import generate, scene_factors
from camscope.models import mini_archs
from camscope.models.mini import TEST_SEED
from camscope.models.weights import PACKAGED_DIR
from camscope_lab.config import CONFIGS, saved_config
from camscope_lab.probe import fit_linear, frozen_features, linear_accuracy, probe_features, probe_seed
from camscope_lab.train import trained_module

if TYPE_CHECKING:
    from camscope_lab.dino import Dino
    from camscope_lab.moco import MocoV3

FACTORS = ("label", "texture")


def _backbone(name: str, checkpoint: Path | None) -> nn.Module:
    """The shipped model, or the evaluated backbone of a train-mini checkpoint (weights only)."""
    if checkpoint is None:
        model = mini_archs.build(CONFIGS[name].arch)
        model.load_state_dict({k: v.float() for k, v in load_file(PACKAGED_DIR / f"{name}.safetensors").items()})
        return model
    state = torch.load(checkpoint, weights_only=True)
    method = trained_module(saved_config(state, checkpoint))
    method.load_state_dict(state["module"])
    model = cast("Dino | MocoV3", method).evaluated_backbone()
    mini_archs.resample_positions(model, False)
    return model


def _factors(n: int, seeds: list[int], pool: int | None = None) -> dict[str, torch.Tensor]:
    per_seed = [scene_factors(min(1024, n - 1024 * i), s, background_pool=pool) for i, s in enumerate(seeds)]
    return {f: torch.from_numpy(np.concatenate([p[f] for p in per_seed])).long() for f in per_seed[0]}


def _pooled_features(model: nn.Module, n: int, seeds: list[int], pool: int) -> torch.Tensor:
    """Frozen features of the same scenes as ``seeds`` give, on backgrounds from a pool of ``pool``."""
    return torch.cat(
        [
            frozen_features(model, generate(min(1024, n - 1024 * i), s, background_pool=pool).images)
            for i, s in enumerate(seeds)
        ]
    )


def _probe_accuracy(
    train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], epochs: int
) -> tuple[int, float]:
    """Classes of the factor, and test accuracy (%) of the records' linear probe fitted on ``train``."""
    classes = int(train[1].max()) + 1
    return classes, linear_accuracy(fit_linear(train[0], train[1], classes, 0, epochs), *test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(CONFIGS), required=True)
    parser.add_argument("--checkpoint", type=Path, default=None, help="a train-mini checkpoint.pt instead")
    parser.add_argument("--images", type=int, default=8192, help="probe images")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--background-pool", type=int, default=16, help="pool of the background probe (0: none)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = _backbone(args.model, args.checkpoint).eval()
    feats, labels = probe_features(model, args.images, 0)
    seeds = [probe_seed(0, k) for k in range(-(-args.images // 1024))]
    train = _factors(args.images, seeds)
    assert torch.equal(train["label"], labels)
    data = generate(1000, TEST_SEED)  # the records' test set
    test_feats, test_labels = frozen_features(model, data.images), torch.from_numpy(data.labels)
    test = _factors(1000, [TEST_SEED])
    assert torch.equal(test["label"], test_labels)
    source = args.checkpoint or f"shipped {args.model}"
    print(f"{source}: {args.images:,} probe images, {args.epochs} epochs, test on generate(1000, {TEST_SEED})")
    print("| factor | classes | chance % | probe test % |\n|---|---|---|---|")
    rows = [(f, (feats, train[f]), (test_feats, test[f])) for f in FACTORS]
    if args.background_pool:
        pool = args.background_pool
        pooled_train = _factors(args.images, seeds, pool)["background"]
        pooled_test = _factors(1000, [TEST_SEED], pool)["background"]
        rows.append(
            (
                f"background (pool of {pool})",
                (_pooled_features(model, args.images, seeds, pool), pooled_train),
                (_pooled_features(model, 1000, [TEST_SEED], pool), pooled_test),
            )
        )
    for factor, fit_on, test_on in rows:
        classes, acc = _probe_accuracy(fit_on, test_on, args.epochs)
        name = "class (shape)" if factor == "label" else factor
        print(f"| {name} | {classes} | {100 / classes:.1f} | {acc:.1f} |", flush=True)


if __name__ == "__main__":
    main()
