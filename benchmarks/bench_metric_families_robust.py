"""Where the robustness family's time goes, camscope against Quantus 0.6.0 on the same work.

The rows of ``benchmarks.bench_metric_families`` (same model, images, maps, parameters and input-gradient
``explain_func``), with the time spent inside ``explain_func`` measured on both sides during the timed
calls. Both libraries must explain every noisy copy (images × ``nr_samples``) with that function, whose
cost neither can change; camscope explains them ``--batch-size`` at a time, Quantus one image batch per
sample. So camscope's ratio is at most the *bound*
``Quantus s / camscope's explain s``, the ratio it would reach with nothing outside the explain calls.

Torch runs on ``--threads`` threads (default 1, as NumPy does): on an oversubscribed CPU, torch's OpenMP
threads wait on each other, which slows many small calls (Quantus's) far more than a few large ones
(camscope's), so multi-threaded ratios there measure the contention, not the work. Timing is interleaved
(Quantus, camscope, Quantus, ...); each figure is the median over the repeats, the ratio the median of the
per-repeat ratios.

    python -m benchmarks.bench_metric_families_robust [--threads 1] [--images 4] [--repeats 5] [--nr-samples 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from benchmarks.bench_metric_families import CASES, ROBUST, case_inputs, saliency


def timed(explain: Callable[..., np.ndarray], spent: list[float]) -> Callable[..., np.ndarray]:
    """``explain`` that adds the seconds of each call to ``spent[0]``."""

    def run(*args: Any, **kwargs: Any) -> np.ndarray:
        start = time.perf_counter()
        try:
            return explain(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    return run


def measure(name: str, n: int, nr_samples: int, repeats: int, batch_size: int) -> dict[str, float]:
    cls, _, func, _, channels = CASES[name]
    model, x, maps, y = case_inputs("cnn", channels, n)
    spent = [0.0]

    def peer() -> None:
        metric = cls(disable_warnings=True, return_aggregate=False, nr_samples=nr_samples)
        metric(model=model, x_batch=x.numpy(), y_batch=y, a_batch=maps[:, None], device="cpu",
               explain_func=timed(saliency, spent))  # fmt: skip

    def ours() -> None:
        func(model, x, maps, y.tolist(), nr_samples=nr_samples, explain_func=timed(saliency, spent),
             batch_size=batch_size)  # fmt: skip

    rows: dict[str, list[float]] = {k: [] for k in ("quantus", "quantus_explain", "camscope", "camscope_explain")}
    loads = []
    for run in range(repeats + 1):  # the first round warms both up and is not kept
        for side, fn in (("quantus", peer), ("camscope", ours)):
            spent[0] = 0.0
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn()
            if run:
                rows[side].append(time.perf_counter() - start)
                rows[f"{side}_explain"].append(spent[0])
        loads.append(os.getloadavg()[0])
    out = {k: statistics.median(v) for k, v in rows.items()}
    out["ratio"] = statistics.median(q / c for q, c in zip(rows["quantus"], rows["camscope"]))
    out["bound"] = statistics.median(q / e for q, e in zip(rows["quantus"], rows["camscope_explain"]))
    out["load"] = statistics.median(loads)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--nr-samples", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256, help="camscope's noisy copies per explain call")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images, "
        f"nr_samples {args.nr_samples}, {args.repeats} repeats, camscope batch_size {args.batch_size}"
    )
    print("| metric | Quantus s | of which explain | camscope s | of which explain | ratio | bound | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in sorted(ROBUST):
        r = measure(name, args.images, args.nr_samples, args.repeats, args.batch_size)
        print(
            f"| {name} | {r['quantus']:.3f} | {r['quantus_explain']:.3f} | {r['camscope']:.3f} | "
            f"{r['camscope_explain']:.3f} | {r['ratio']:.1f}× | {r['bound']:.1f}× | {r['load']:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
