"""Seconds per training step of a mini model, NCHW against channels-last, in the same run.

    python benchmarks/mini_step_time.py --model mini_dino_resnet --rounds 3 --steps 4

Why: ``camscope train-mini`` trains the convolutional minis channels-last (oneDNN's CPU convolutions are
faster that way). Each round builds the model afresh in each layout, runs one untimed step, then times
``--steps`` steps on the config's own batch size, loss and bf16 setting; the layouts alternate so that
other load on the machine hits both alike. Prints the median seconds per step and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from camscope.lab.data import batches
from camscope.lab.train import CONFIGS, MiniConfig, _fast_layout, ssl_method
from camscope.models import mini_archs


def _stepper(cfg: MiniConfig, channels_last: bool) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """One optimiser step of ``cfg``'s training on a batch, in the chosen layout."""
    torch.manual_seed(0)
    model = mini_archs.build(cfg.arch)
    module: torch.nn.Module = ssl_method(cfg, model) if cfg.ssl else model
    module.train()
    if channels_last:  # what train-mini does
        module = _fast_layout(cfg, module)
    params = module.trainable_parameters() if cfg.ssl else list(module.parameters())  # type: ignore[operator]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr)
    g = torch.Generator().manual_seed(0)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = module.loss(x, 0.1, g) if cfg.ssl else F.cross_entropy(module(x), y)  # type: ignore[operator]
        optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        optimizer.step()
        if cfg.ssl:
            module.update_momentum(0.1)  # type: ignore[operator]

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mini_dino_resnet")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round and layout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = CONFIGS[args.model]
    data = batches(0, cfg.batch_size, normalise=not cfg.ssl)
    times: dict[str, list[float]] = {"NCHW": [], "channels-last": []}
    for _ in range(args.rounds):
        for layout in times:
            step = _stepper(cfg, layout == "channels-last")
            step(*next(data))  # untimed: oneDNN picks its kernels on the first call
            for _ in range(args.steps):
                x, y = next(data)
                start = time.perf_counter()
                step(x, y)
                times[layout].append(time.perf_counter() - start)
    data.close()
    nchw, last = (statistics.median(v) for v in times.values())
    print(f"{args.model}: batch {cfg.batch_size}, bf16 {cfg.bf16}, 1 thread, load average {os.getloadavg()[0]:.1f}")
    print("| layout | median s/step | steps timed |\n|---|---|---|")
    for layout, values in times.items():
        print(f"| {layout} | {statistics.median(values):.3f} | {len(values)} |")
    print(f"channels-last is {nchw / last:.2f}x NCHW")


if __name__ == "__main__":
    main()
