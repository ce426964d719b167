"""Many methods, one pass: the gradient CAMs together vs one at a time, in the same process.

ResNet-50 (random weights, seeded) at ``layer4[-1]``, one 224×224 image (or ``--batch``). Timed
interleaved (one alone, all seven one at a time, all seven through one shared pass, repeat), medians,
with the load average, so a burst of load from elsewhere hits every variant alike: read the ratios.
The maps of the shared pass are checked against each method alone (max |Δ|).

    python -m benchmarks.bench_shared [--repeats 7] [--model resnet50|vit_b16] [--write-readme]

Goal (issue 15): the seven together ≤ 1.5× one of them alone. Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

import camscope
from benchmarks.bench_methods import GRADIENT_METHODS, build
from benchmarks.readme_tables import publish
from camscope.methods.shared import compute_many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--write-readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()

    model, layers, reshape, x = build(args.model)
    x = x.expand(args.batch, -1, -1, -1).contiguous()
    targets = [1] * args.batch
    cams = [camscope.get_method(name)(model, layers, reshape) for name in GRADIENT_METHODS]

    variants = {
        "gradcam alone": lambda: [cams[0].compute(x, targets)],
        "7 methods, one at a time": lambda: [cam.compute(x, targets) for cam in cams],
        "7 methods, one shared pass": lambda: compute_many(cams, x, targets),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    loads = []
    for fn in variants.values():
        fn()  # warm-up
    for _ in range(args.repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
        loads.append(os.getloadavg()[0])
    alone = [cam(x, targets) for cam in cams]
    shared = [m.cpu().numpy() for m in compute_many(cams, x, targets)]
    diff = max(float(np.abs(a - s).max()) for a, s in zip(alone, shared))
    med = {name: statistics.median(v) for name, v in times.items()}
    one = med["gradcam alone"]
    lines = [
        f"{args.model} (random weights), batch {args.batch} at 224×224, {torch.get_num_threads()} threads, "
        f"medians of {args.repeats} interleaved runs, load average {statistics.median(loads):.1f} "
        f"(min {min(loads):.1f}, max {max(loads):.1f}); methods: {', '.join(GRADIENT_METHODS)}",
        "",
        "| variant | seconds | × gradcam alone |",
        "|---|---:|---:|",
        *[f"| {name} | {seconds:.3f} | {seconds / one:.2f} |" for name, seconds in med.items()],
        "",
        f"shared vs one at a time: {med['7 methods, one at a time'] / med['7 methods, one shared pass']:.1f}× faster; "
        f"max |Δ map| shared vs alone: {diff:.1e} (goal: 7 together ≤ 1.5× one alone)",
    ]
    publish(f"shared-{args.model}", "\n".join(lines), args.write_readme)


if __name__ == "__main__":
    main()
