"""Benchmark of the Quantus metric families: camscope against Quantus 0.6.0 on the same work, same run.

A random-weight model (``--model cnn``: two 8-channel convolutions; ``linear``: one linear layer),
``--images`` random 3×32×32 images (IROF: 1×32×32, where Quantus runs) with random maps; every metric
is given the same parameters on both sides (listed in the table); camscope runs ``--batch-size``
perturbed inputs per forward (Quantus one step of the whole image batch). Each pair is
timed interleaved (Quantus, camscope, Quantus, ...) so load from elsewhere hits both alike; the ratio is
the median of the per-repeat ratios. "max rel. diff" is the largest |difference| of the outputs over
the largest |Quantus output| (deterministic metrics; the sampling metrics draw differently here, so it
is left empty; their parity on the same draws is tested in tests/metrics).
"fwd s" is the time each side spent inside the model's forward calls during its timed call; **bound** is
Quantus s / camscope fwd s, the ratio camscope would reach if nothing but its forwards cost anything (left
empty for the re-explaining metrics, whose floor is their explain calls: bench_metric_families_robust). Where
both sides push the same images through the same model, no implementation of the metric can beat it.
The first round warms both sides up and is not kept.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def forward_seconds(model: nn.Module) -> Iterator[list[float]]:
    """Adds the seconds of every forward call of ``model`` in the block to ``spent[0]``."""
    spent, started = [0.0], [0.0]

    def pre(*_: Any) -> None:
        started[0] = time.perf_counter()

    def post(*_: Any) -> None:
        spent[0] += time.perf_counter() - started[0]

    handles = [model.register_forward_pre_hook(pre), model.register_forward_hook(post)]
    try:
        yield spent
    finally:
        for handle in handles:
            handle.remove()


def run_case(name: str, kind: str, n: int, repeats: int, batch_size: int) -> dict[str, float | None]:
    """Medians of each side's seconds and forward seconds, the ratio and bound (medians of the per-repeat
    ratios), the outputs' max relative difference (deterministic metrics) and the load."""
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

    times: dict[str, list[float]] = {k: [] for k in ("quantus", "camscope", "quantus_fwd", "camscope_fwd")}
    outputs: dict[str, np.ndarray] = {}
    loads = []
    for run in range(repeats + 1):
        for side, fn in (("quantus", peer), ("camscope", ours)):
            with warnings.catch_warnings(), forward_seconds(model) as spent:
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                outputs[side] = fn()
                elapsed = time.perf_counter() - start
            if run:
                times[side].append(elapsed)
                times[f"{side}_fwd"].append(spent[0])
        loads.append(os.getloadavg()[0])
        if run:
            print(
                f"  {name}: quantus {times['quantus'][-1]:.3f} s, camscope {times['camscope'][-1]:.3f} s",
                file=sys.stderr,
            )
    gap = np.nanmax(np.abs(outputs["quantus"] - outputs["camscope"])) / max(
        np.nanmax(np.abs(outputs["quantus"])), 1e-12
    )
    out: dict[str, float | None] = {k: statistics.median(v) for k, v in times.items()}
    out["ratio"] = statistics.median(q / c for q, c in zip(times["quantus"], times["camscope"]))
    # a re-explaining metric's floor is its explain calls (forward and backward): bench_metric_families_robust
    out["bound"] = (
        None if name in ROBUST else statistics.median(q / f for q, f in zip(times["quantus"], times["camscope_fwd"]))
    )
    out["diff"] = float(gap) if deterministic else None
    out["load"] = statistics.median(loads)
    return out


def result_is_curve(name: str) -> bool:
    """Quantus returns the curve (not the area) for these, so the curves are compared."""
    return name in {"pixel_flipping", "region_perturbation", "selectivity"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", choices=["cnn", "linear"], default="cnn", help="see build_model (default cnn)")
    parser.add_argument(
        "--batch-size", type=int, default=64, help="camscope's perturbed inputs per forward (default 64, its own)"
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
    header = ["metric", "parameters", "Quantus s", "of which fwd", "camscope s", "of which fwd", "ratio", "bound"]
    print("| " + " | ".join([*header, "max rel. diff", "load"]) + " |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        r = run_case(name, args.model, args.images, args.repeats, args.batch_size)
        shown = "" if r["diff"] is None else f"{r['diff']:.1e}"
        bound = "" if r["bound"] is None else f"{r['bound']:.1f}×"
        params = ", ".join(f"{k}={v}" for k, v in CASES[name][1].items()) or "defaults"
        print(
            f"| {name} | {params} | {r['quantus']:.3f} | {r['quantus_fwd']:.3f} | {r['camscope']:.3f} | "
            f"{r['camscope_fwd']:.3f} | {r['ratio']:.1f}× | {bound} | {shown} | {r['load']:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
