"""Linear-probe accuracy of one self-supervised mini backbone against the probe's number of labelled images.

    python benchmarks/mini_probe_size.py --model mini_mocov3_resnet --weights FILE.safetensors --sizes 8192,32768,65536

The backbone is frozen; only the probe changes (``camscope.lab.train.linear_probe``), so the rows differ
by how many labels the linear head was fitted on. Test accuracy on the records' test set.
"""

from __future__ import annotations

import argparse
import time

import torch
from safetensors.torch import load_file

from camscope.lab.data import TEST_SEED, accuracy
from camscope.lab.train import CONFIGS, linear_probe
from camscope.models import mini_archs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mini_mocov3_resnet")
    parser.add_argument("--weights", required=True, help="a safetensors file of the model (e.g. a run's record)")
    parser.add_argument("--sizes", default="8192,32768,65536")
    args = parser.parse_args()
    torch.set_num_threads(1)
    state = {k: v.float() for k, v in load_file(args.weights).items()}
    print("| probe images | probe train % | test % | probe seconds |\n|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        model = mini_archs.build(CONFIGS[args.model].arch)
        model.load_state_dict(state)
        start = time.perf_counter()
        info = linear_probe(model, 0, n)
        seconds = time.perf_counter() - start
        test = accuracy(model, 1000, TEST_SEED)
        print(f"| {n:,} | {info['probe_train_accuracy']:.1f} | {test:.1f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
