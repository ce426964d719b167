"""Seconds per training step of a mini model, two variants in the same run: layouts, view sizes, or precisions.

    python -m camscope_lab.experiments.mini_step_time --model mini_dino_resnet --rounds 3 --steps 4
    python -m camscope_lab.experiments.mini_step_time --model mini_mocov3_vit --pretrain-sizes 64 32 \\
        --rounds 2 --steps 3
    python -m camscope_lab.experiments.mini_step_time --model mini_mocov3_vit --bf16 --rounds 2 --steps 3

Why: ``camscope train-mini`` trains the convolutional minis channels-last (oneDNN's CPU convolutions are
faster that way), and pre-trains self-supervised minis on views smaller than the 64-px scenes. Each round
builds the module afresh per variant (``trained_module``, as training does), runs one untimed step, then
times ``--steps`` steps on the config's own batch size, loss and bf16 setting; the variants alternate so
that other load on the machine hits both alike. Prints the median seconds per step and the ratio.

``--bf16`` compares float32 with bfloat16 autocast: whether bf16 pays depends on the CPU (with AMX tiles
oneDNN runs bf16 matrix products on them; on AVX2-only CPUs it is no faster), so the printout names
the CPU's relevant flags.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch

from camscope_lab.config import CONFIGS, MiniConfig
from camscope_lab.data import batches
from camscope_lab.loop import Run
from camscope_lab.train import batch_loss, trained_module

if TYPE_CHECKING:
    from camscope_lab.dino import Dino
    from camscope_lab.moco import MocoV3


def _stepper(cfg: MiniConfig, channels_last: bool) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """One training step of ``cfg`` on a batch, in the chosen layout: train-mini's own module, loss and step."""
    torch.manual_seed(0)
    module = trained_module(cfg, fast_layout=channels_last)  # channels-last: what train-mini does
    module.train()
    g = torch.Generator().manual_seed(0)
    method = cast("Dino | MocoV3", module)
    params = method.trainable_parameters() if cfg.ssl else list(module.parameters())
    run = Run(cfg, 0, module, params, g)
    loss = batch_loss(cfg, module, g)
    after = method.update_momentum if cfg.ssl else None

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        run.one_step(lambda progress: loss(x, y, progress), after, total=10**6)

    return step


def _cpu_flags() -> list[str]:
    """The CPU features that decide whether bf16 is fast (Linux only; empty elsewhere)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mini_dino_resnet")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round and variant")
    parser.add_argument(
        "--pretrain-sizes",
        type=int,
        nargs=2,
        default=None,
        metavar=("A", "B"),
        help="compare these pre-training view sizes (the config's own layout) instead of the two layouts",
    )
    parser.add_argument("--bf16", action="store_true", help="compare float32 with bfloat16 autocast instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = CONFIGS[args.model]
    channels_last = cfg.family == "ResNet"
    if args.pretrain_sizes:
        variants = {f"{n} px views": (replace(cfg, pretrain_size=n), channels_last) for n in args.pretrain_sizes}
    elif args.bf16:
        variants = {name: (replace(cfg, bf16=name == "bf16"), channels_last) for name in ("float32", "bf16")}
    else:
        variants = {"NCHW": (cfg, False), "channels-last": (cfg, True)}
    data = batches(0, cfg.batch_size, normalise=not cfg.ssl)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (variant, layout) in variants.items():
            step = _stepper(variant, layout)
            step(*next(data))  # untimed: oneDNN picks its kernels on the first call
            for _ in range(args.steps):
                x, y = next(data)
                start = time.perf_counter()
                step(x, y)
                times[name].append(time.perf_counter() - start)
    data.close()
    first, second = (statistics.median(v) for v in times.values())
    print(
        f"{args.model}: batch {cfg.batch_size}, bf16 {cfg.bf16}, 1 thread, load average {os.getloadavg()[0]:.1f}, "
        f"CPU flags: {' '.join(_cpu_flags()) or 'unknown'}"
    )
    print("| variant | median s/step | steps timed |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} | {len(values)} |")
    a, b = times
    print(f"{b} is {first / second:.2f}x {a}")


if __name__ == "__main__":
    main()
