"""Throughput and memory of the synthetic generator (target: >= 1,000 images/s on 2 cores, never the bottleneck).

    python benchmarks/bench_synthetic.py [--n 5000] [--size 64] [--repeats 3] [--examples PNG]

Prints the median images/s (wall clock and CPU time: on a shared machine the CPU figure is the one that
says what the code costs) with and without counterfactuals, and the peak RSS. ``--examples`` also writes
a grid of example images, their counterfactuals and masks.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np

from camscope.data.synthetic import CLASS_NAMES, DEFAULT_SIZE, SyntheticBatch, generate


def _time(n: int, size: int, counterfactual: bool, repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for seed in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        generate(n, seed=seed, size=size, counterfactual=counterfactual)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return n / statistics.median(walls), n / statistics.median(cpus)


def _save_examples(path: str, size: int) -> None:
    from camscope.viz import grid_figure, save_png

    batch: SyntheticBatch = generate(40, seed=0, size=size, counterfactual=True)
    rows = [[(CLASS_NAMES[batch.labels[i]], batch.images[i]) for i in range(r * 10, r * 10 + 10)] for r in range(4)]
    rows.append([("removed", image) for image in batch.counterfactual[:10]])
    rows.append([("mask", mask.astype(np.float32)) for mask in batch.masks[:10]])
    save_png(grid_figure(rows, cell_inches=1.3, colormap="gray"), path)
    print(f"examples: {path}")


def _rss_mib() -> float:
    """Current resident memory (Linux), to separate the imports' share from the generator's."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", default=None, help="write an example grid PNG here")
    args = parser.parse_args()
    generate(10, seed=0, size=args.size)  # warm-up: shape statistics, imports
    start_mib = _rss_mib()
    print(f"synthetic generator, {args.n} images of {args.size}x{args.size}, median of {args.repeats}")
    print(f"{'variant':<22}{'images/s (wall)':>18}{'images/s (CPU)':>18}")
    for counterfactual in (False, True):
        wall, cpu = _time(args.n, args.size, counterfactual, args.repeats)
        name = "with counterfactual" if counterfactual else "images+masks+boxes"
        print(f"{name:<22}{wall:>18,.0f}{cpu:>18,.0f}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    output_mib = args.n * args.size**2 * 7 / 2**20
    print(f"peak RSS: {peak_mib:.0f} MiB (after imports: {start_mib:.0f} MiB; the output alone: {output_mib:.0f} MiB)")
    if args.examples:
        _save_examples(args.examples, args.size)


if __name__ == "__main__":
    main()
