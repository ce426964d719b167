"""Linear-probe accuracy of one self-supervised mini backbone against the probe's number of labelled images.

    python -m camscope_lab.experiments.mini_probe_size --model mini_mocov3_resnet --weights FILE.safetensors \\
        --sizes 8192,32768,65536

The backbone is frozen; only the probe changes (``camscope_lab.probe.linear_probe``), so the rows differ
by how many labels the linear head was fitted on. Test accuracy on the records' test set.
"""

from __future__ import annotations

import argparse
import time
from typing import cast

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from camscope.models import mini_archs
from camscope.models.mini import TEST_SEED
from camscope_lab.config import CONFIGS
from camscope_lab.data import accuracy
from camscope_lab.probe import linear_probe


def _resize_inputs(model: nn.Module, side: int) -> None:
    """Resize every image to ``side`` px on its way into the backbone's first layer (stem or patch embedding)."""
    first = cast(nn.Module, model.patch_embed if hasattr(model, "patch_embed") else model.conv1)

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (F.interpolate(args[0], size=(side, side), mode="bilinear", antialias=True), *args[1:])

    first.register_forward_pre_hook(hook)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mini_mocov3_resnet")
    parser.add_argument("--weights", required=True, help="a safetensors file of the model (e.g. a run's record)")
    parser.add_argument("--sizes", default="8192,32768,65536")
    parser.add_argument("--input-size", type=int, default=None, help="resize the scenes to this side first")
    args = parser.parse_args()
    torch.set_num_threads(1)
    state = {k: v.float() for k, v in load_file(args.weights).items()}
    print(f"{args.model}, input {args.input_size or 64} px")
    print("| probe images | probe train % | test % | probe seconds |\n|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        model = mini_archs.build(CONFIGS[args.model].arch)
        model.load_state_dict(state)
        if args.input_size is not None:
            _resize_inputs(model, args.input_size)
        start = time.perf_counter()
        info = linear_probe(model, 0, n)
        seconds = time.perf_counter() - start
        test = accuracy(model, 1000, TEST_SEED)
        print(f"| {n:,} | {info['probe_train_accuracy']:.1f} | {test:.1f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
