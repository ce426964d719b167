"""Learning curves of one mini architecture under a training recipe: how the mini-zoo recipes were chosen.

Trains a supervised mini model from scratch with the package's own loop (``camscope_lab.train``) for a
few minutes and prints the mean loss and held-out accuracy (first 500 test images) every ``--every``
steps. ``--linear-stem`` swaps the transformers' convolutional stem back to timm's single ``patch ×
patch`` projection, which reproduces the plateau recorded in ``benchmarks/results/mini_zoo.md``::

    python -m camscope_lab.experiments.mini_recipes --arch vit --lr 5e-4 --linear-stem --minutes 6  # 2.303 / ~10 %
    python -m camscope_lab.experiments.mini_recipes --arch vit --lr 5e-4 --minutes 6  # leaves chance at ~600 steps
    python -m camscope_lab.experiments.mini_recipes --arch cait --minutes 10 \
        --model-kw init_values=0.1  # CaiT's LayerScale rule
    python -m camscope_lab.experiments.mini_recipes --arch vit --steps 900 --every 150 \
        --attention-init mimetic  # stays at chance

Not a test: it is a tool for choosing recipes, and each run takes minutes.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers.patch_embed import PatchEmbed

from camscope.models import mini_archs as backbones
from camscope_lab.config import MiniConfig
from camscope_lab.data import accuracy, batches
from camscope_lab.loop import optimise
from camscope_lab.mimetic import ATTENTION_INITS, mimetic_init


def build(arch: str, linear_stem: bool, changes: dict[str, Any] | None = None) -> torch.nn.Module:
    """The mini architecture, optionally with timm's linear stem and changed timm arguments (``--model-kw``)."""
    spec = backbones.ARCHS[arch].build
    if not isinstance(spec, backbones.TimmMini):
        if linear_stem or changes:
            raise SystemExit(f"--linear-stem and --model-kw apply to the timm minis, not {arch!r}")
        return spec()
    kwargs = {k: PatchEmbed if linear_stem and v is backbones.ConvStemPatchEmbed else v for k, v in spec.kwargs}
    return dataclasses.replace(spec, kwargs=tuple({**kwargs, **(changes or {})}.items()))()


def _keyword(text: str) -> tuple[str, Any]:
    """``name=value`` with a Python literal value (``init_values=0.1``, ``drop_path_rate=0.1``)."""
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name, ast.literal_eval(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=list(backbones.ARCHS), required=True)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--grad-clip", type=float, default=1.0)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument(
        "--steps", type=int, default=None, help="fixed schedule length (runs to compare: the same), instead of timing"
    )
    parser.add_argument("--every", type=int, default=300, help="evaluate every this many steps")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--linear-stem", action="store_true", help="timm's linear patch projection, no conv stem")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--attention-init", choices=ATTENTION_INITS, default=None, help="camscope_lab.mimetic (default: timm's)"
    )
    parser.add_argument(
        "--model-kw", type=_keyword, nargs="*", default=[], metavar="NAME=VALUE", help="change timm model arguments"
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.arch, args.linear_stem, dict(args.model_kw))
    if args.attention_init == "mimetic":
        mimetic_init(model)
    model.train()
    cfg = MiniConfig(
        "experiment", args.arch, lr=args.lr, batch_size=args.batch_size, warmup=args.warmup,
        grad_clip=args.grad_clip or None, minutes=args.minutes, bf16=args.bf16,
    )  # fmt: skip
    data = batches(0, cfg.batch_size)
    losses: list[float] = []
    step = 0

    def step_loss(progress: float) -> torch.Tensor:
        x, y = next(data)
        loss = F.cross_entropy(model(x), y)
        losses.append(float(loss))
        return loss

    def after_step(progress: float) -> None:
        nonlocal step
        step += 1
        if step % args.every == 0:
            acc = accuracy(model, 500)
            model.train()
            recent = losses[-args.every :]
            print(f"step {step:5d}  loss {sum(recent) / len(recent):.3f}  held-out accuracy {acc:5.1f} %", flush=True)

    optimise(list(model.parameters()), step_loss, cfg, steps=args.steps, after_step=after_step, desc=args.arch)
    print(f"final: {step} steps, held-out accuracy {accuracy(model, 500):.1f} %")


if __name__ == "__main__":
    main()
