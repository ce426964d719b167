"""Benchmark of the Quantus metric families: camscope against Quantus 0.6.0 on the same work, same run.

A random-weight model (``--model cnn``: two 8-channel convolutions; ``linear``: one linear layer),
``--images`` random 3×32×32 images (IROF: 1×32×32, where Quantus runs) with random maps; every metric
is given the same parameters on both sides (listed in the table); camscope runs ``--batch-size``
perturbed inputs per forward (Quantus one step of the whole image batch). Each pair is
timed interleaved (Quantus, camscope, Quantus, ...) so load from elsewhere hits both alike; the ratio is
the median of the per-repeat ratios. "max rel. diff" is the largest |difference| of the outputs over
the largest |Quantus output| (deterministic metrics; the sampling metrics draw differently here, so it
is left empty; their parity on the same draws is tested in tests/metrics).
Robustness metrics re-explain with the same input-gradient explain function on both sides.

Quantus 0.6.0 calls ``np.trapz`` (removed in NumPy 2.4): it is set to ``np.trapezoid`` for this script.

    python -m benchmarks.bench_metric_families [--model cnn|linear] [--images 8] [--repeats 3] [--metrics a,b]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import quantus
import torch
from torch import nn

from camscope.metrics import faithfulness as F
from camscope.metrics import robustness as R

np.trapz = np.trapezoid  # type: ignore[attr-defined]  # Quantus 0.6.0 still calls the old name


def build_model(kind: str, channels: int) -> nn.Module:
    """``cnn``: two 8-channel convolutions, whose forwards dominate both sides' time; ``linear``: one
    linear layer, almost free, so the time is each implementation's own machinery."""
    torch.manual_seed(0)
    if kind == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(channels * 32 * 32, 10)).eval()
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(128, 10),
    ).eval()


def saliency(model: nn.Module, inputs: Any, targets: Any, **_: Any) -> np.ndarray:
    """|∂ logit / ∂ x| summed over channels, for NumPy (Quantus) and tensor (camscope) batches alike."""
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs, dtype=torch.float32)
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(x)
        out[torch.arange(len(x)), torch.as_tensor(np.asarray(targets))].sum().backward()
    grad: np.ndarray = x.grad.abs().sum(1).numpy()  # type: ignore[union-attr]
    return grad


# name: (Quantus class, shared parameters, camscope function, deterministic, channels)
CASES: dict[str, tuple[Any, dict[str, Any], Callable[..., Any], bool, int]] = {
    "faithfulness_correlation": (quantus.FaithfulnessCorrelation, {"nr_runs": 100, "subset_size": 224},
                                 F.faithfulness_correlation, False, 3),
    "monotonicity_correlation": (quantus.MonotonicityCorrelation, {"features_in_step": 64, "nr_samples": 10},
                                 F.monotonicity_correlation, False, 3),
    "pixel_flipping": (quantus.PixelFlipping, {"features_in_step": 32}, F.pixel_flipping, True, 3),
    "region_perturbation": (quantus.RegionPerturbation, {"patch_size": 4, "regions_evaluation": 64},
                            F.region_perturbation, True, 3),
    "selectivity": (quantus.Selectivity, {"patch_size": 4}, F.selectivity, True, 3),
    "irof": (quantus.IROF, {}, F.irof, True, 1),
    "infidelity": (quantus.Infidelity, {"perturb_patch_sizes": [4]}, F.infidelity, True, 3),
    "max_sensitivity": (quantus.MaxSensitivity, {"nr_samples": 20}, R.max_sensitivity, False, 3),
    "avg_sensitivity": (quantus.AvgSensitivity, {"nr_samples": 20}, R.avg_sensitivity, False, 3),
    "local_lipschitz_estimate": (quantus.LocalLipschitzEstimate, {"nr_samples": 20}, R.local_lipschitz_estimate,
                                 False, 3),
}  # fmt: skip
ROBUST = {"max_sensitivity", "avg_sensitivity", "local_lipschitz_estimate"}


def case_inputs(kind: str, channels: int, n: int) -> tuple[torch.nn.Module, torch.Tensor, np.ndarray, np.ndarray]:
    """The model, ``n`` seeded random 32×32 images, random maps scaled to peak 1, and the model's top-1 classes."""
    model = build_model(kind, channels)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, channels, 32, 32, generator=g)
    maps = torch.rand(n, 32, 32, generator=g).numpy()
    maps /= maps.max(axis=(1, 2), keepdims=True)
    with torch.no_grad():
        y = model(x).argmax(1).numpy()
    return model, x, maps, y


def run_case(
    name: str, kind: str, n: int, repeats: int, batch_size: int
) -> tuple[float, float, float, float | None, float]:
    cls, params, func, deterministic, channels = CASES[name]
    model, x, maps, y = case_inputs(kind, channels, n)
    extra = {"explain_func": saliency} if name in ROBUST else {}

    def peer() -> np.ndarray:
        metric = cls(disable_warnings=True, return_aggregate=False, **params)
        # Quantus's IROF takes one image per call: its 'mean' baseline is the mean of the whole batch
        parts = [(x[i : i + 1], y[i : i + 1], maps[i : i + 1]) for i in range(n)] if name == "irof" else [(x, y, maps)]
        out = [
            metric(model=model, x_batch=xb.numpy(), y_batch=yb, a_batch=ab[:, None], device="cpu", **extra)
            for xb, yb, ab in parts
        ]
        return np.concatenate(
            [np.asarray(o, dtype=np.float64).reshape(len(yb), -1) for o, (_, yb, _) in zip(out, parts)]
        )

    def ours() -> np.ndarray:
        result = func(model, x, maps, y.tolist(), **params, **extra, batch_size=batch_size)
        return result.curves if result_is_curve(name) else result.scores[:, None]

    times: dict[str, list[float]] = {"quantus": [], "camscope": []}
    outputs: dict[str, np.ndarray] = {}
    loads = []
    for _ in range(repeats):
        for side, fn in (("quantus", peer), ("camscope", ours)):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outputs[side] = fn()
            times[side].append(time.perf_counter() - start)
        loads.append(os.getloadavg()[0])
        print(
            f"  {name}: quantus {times['quantus'][-1]:.2f} s, camscope {times['camscope'][-1]:.3f} s", file=sys.stderr
        )
    ratio = statistics.median(q / c for q, c in zip(times["quantus"], times["camscope"]))
    gap = np.nanmax(np.abs(outputs["quantus"] - outputs["camscope"])) / max(
        np.nanmax(np.abs(outputs["quantus"])), 1e-12
    )
    diff = float(gap) if deterministic else None
    return (
        statistics.median(times["quantus"]),
        statistics.median(times["camscope"]),
        ratio,
        diff,
        statistics.median(loads),
    )


def result_is_curve(name: str) -> bool:
    """Quantus returns the curve (not the area) for these, so the curves are compared."""
    return name in {"pixel_flipping", "region_perturbation", "selectivity"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", choices=["cnn", "linear"], default="cnn", help="see build_model (default cnn)")
    parser.add_argument(
        "--batch-size", type=int, default=256, help="camscope's perturbed inputs per forward (default 256)"
    )
    parser.add_argument("--metrics", default=",".join(CASES), help="comma-separated names (default: all)")
    args = parser.parse_args(argv)
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in names if m not in CASES]
    if unknown:
        parser.error(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, model {args.model}, "
        f"{args.images} images, {args.repeats} repeats, camscope batch_size {args.batch_size}"
    )
    print("| metric | parameters | Quantus s | camscope s | ratio | max rel. diff | load |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        q, c, ratio, diff, load = run_case(name, args.model, args.images, args.repeats, args.batch_size)
        shown = "" if diff is None else f"{diff:.1e}"
        params = ", ".join(f"{k}={v}" for k, v in CASES[name][1].items()) or "defaults"
        print(f"| {name} | {params} | {q:.3f} | {c:.3f} | {ratio:.1f}× | {shown} | {load:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
