"""Linear-probe accuracy of a frozen token mini under several readouts: is the class in the backbone at all?

    python -m camscope_lab.experiments.mini_probe_readouts --model mini_mocov3_vit
    python -m camscope_lab.experiments.mini_probe_readouts --model mini_dino_xcit --images 8192
    python -m camscope_lab.experiments.mini_probe_readouts --model mini_mocov3_vit --random    # an untrained baseline

Why: the shipped heads read one vector (the CLS token after the final norm). DINO's own linear
evaluation of ViTs concatenates the CLS tokens of the last 4 blocks (``eval_linear.py --n_last_blocks``),
optionally with the mean patch token (``--avgpool_patchtokens``). If a richer readout probed far better,
the features would be there and only the readout weak. If every readout is low, the backbone has not
learned the class. Each readout gets the records' probe (:func:`camscope_lab.probe.fit_linear`) on the run
seed's probe images, tested on the records' test set. XCiT's blocks hold patch tokens only (its CLS token
joins in the class-attention layers), so its "last 4" rows average patch tokens.
"""

from __future__ import annotations

import argparse
from typing import cast

import numpy as np
import torch
from safetensors.torch import load_file
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from camscope.data.synthetic import generate, to_input
from camscope.models import mini_archs
from camscope.models.mini import TEST_SEED
from camscope.models.weights import PACKAGED_DIR
from camscope_lab.config import CONFIGS
from camscope_lab.probe import fit_linear, linear_accuracy, probe_features

READOUTS = ("CLS (what the head reads)", "mean patch token", "CLS + mean patch token", "last 4 blocks")


class Readouts:
    """Every readout of one frozen model side by side in one row per scene, from one forward pass per batch.

    A features callable for :func:`camscope_lab.probe.probe_features` (hooks on the last four blocks);
    :meth:`split` cuts its rows back into the readouts.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model.eval()
        self.outputs: list[torch.Tensor] = []
        self.widths: list[int] = []
        for block in list(cast(nn.Sequential, model.blocks))[-4:]:
            block.register_forward_hook(lambda _m, _i, out: self.outputs.append(out))

    @torch.inference_mode()
    def __call__(self, _model: nn.Module, images: np.ndarray) -> torch.Tensor:
        x = to_input(images)
        return torch.cat([self._batch(x[i : i + 256]) for i in range(0, len(x), 256)])

    def _batch(self, x: torch.Tensor) -> torch.Tensor:
        self.outputs.clear()
        vit = cast(VisionTransformer, self.model)
        tokens = vit.forward_features(x)
        cls = vit.forward_head(tokens, pre_logits=True)
        patches = tokens[:, 1:].mean(1)
        norm = vit.norm
        has_cls = [out.shape[1] == tokens.shape[1] for out in self.outputs]  # ViT blocks carry the CLS token
        last4 = [norm(out)[:, 0] if cls_in else norm(out).mean(1) for out, cls_in in zip(self.outputs, has_cls)]
        parts = (cls, patches, torch.cat([cls, patches], 1), torch.cat(last4, 1))
        self.widths = [p.shape[1] for p in parts]
        return torch.cat(parts, 1)

    def split(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(READOUTS, torch.split(rows, self.widths, dim=1), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=[n for n, c in CONFIGS.items() if c.arch in ("vit", "xcit")], required=True)
    parser.add_argument("--images", type=int, default=8192, help="probe images")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--random", action="store_true", help="an untrained model of the same architecture")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = mini_archs.build(CONFIGS[args.model].arch)
    if not args.random:
        model.load_state_dict({k: v.float() for k, v in load_file(PACKAGED_DIR / f"{args.model}.safetensors").items()})
    readouts = Readouts(model)
    rows, train_labels = probe_features(model, args.images, 0, readouts)
    train = readouts.split(rows)
    data = generate(1000, TEST_SEED)
    test, test_labels = readouts.split(readouts(model, data.images)), torch.from_numpy(data.labels)
    source = f"{args.model} ({'random init' if args.random else 'shipped'})"
    print(f"{source}: {args.images:,} probe images, {args.epochs} epochs, test on generate(1000, {TEST_SEED})")
    print("| readout | dim | probe train % | test % |\n|---|---|---|---|")
    for name in READOUTS:
        linear = fit_linear(train[name], train_labels, mini_archs.NUM_CLASSES, 0, args.epochs)
        fit, acc = linear_accuracy(linear, train[name], train_labels), linear_accuracy(linear, test[name], test_labels)
        print(f"| {name} | {train[name].shape[1]} | {fit:.1f} | {acc:.1f} |", flush=True)


if __name__ == "__main__":
    main()
