"""Benchmark of the complexity, localisation and randomisation metric families against Quantus 0.6.0.

Both sides do the same work in the same process, timed interleaved (peer, ours, peer, ours, ...), so load
from elsewhere hits both alike; every row checks that the two results agree (max |difference|).

``maps`` (no model): ``--maps`` CAM-like maps of 224×224 (a ReLU'd random 7×7 grid, upsampled; ties at 0)
with box masks: sparseness, complexity, effective_complexity, top_k_intersection, attribution_localisation,
auc, focus (2×2 mosaic flags). Quantus normalises per image here (``normalise_axes``), as camscope does.
The segmentation protocol has no Quantus counterpart: it is timed against the per-image scikit-learn
oracle of its test (``jaccard_score``, ``average_precision_score``).

``randomisation``: a ResNet-18 (torchvision, random weights, BatchNorm left out: the two randomise it
differently, see :mod:`camscope.metrics.sanity`) at
``--side`` px, ``--images`` images, Grad-CAM at ``layer4`` as the explanation on both sides (Quantus's
``explain_func``, and for Smooth MPRT ``quantus.explain``, which Quantus calls instead of it). Both sides
spend most of their time in the same Grad-CAM calls, so these ratios measure batching, not arithmetic. A
second table times each Quantus call against the metric's floor, the explanations (and the randomisation)
that no implementation can skip: the best ratio any implementation could reach on this work.

Torch runs on ``--threads`` threads (default 1, as NumPy does): on an oversubscribed CPU, torch's
OpenMP threads wait on each other and every elementwise op slows by 5-20×.

    python -m benchmarks.bench_metric_families_b [--repeats 3] [--maps 64] [--images 8] [--sections maps,randomisation]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torchvision

from benchmarks.readme_tables import invocation

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import quantus

from camscope.metrics import (
    attribution_localisation,
    auc,
    complexity,
    effective_complexity,
    efficient_mprt,
    focus,
    random_logit,
    segmentation,
    smooth_mprt,
    sparseness,
    top_k_intersection,
)
from camscope.metrics.randomisation import explainer

PER_IMAGE = {"normalise_axes": (1, 2, 3)}
Row = tuple[str, float, float, float, float, float]  # name, peer s, ours s, ratio, max |diff|, load


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(peer: Callable[[], Any], ours: Callable[[], Any], repeats: int) -> tuple[float, float, float, Any, Any]:
    """Median seconds of each, median of the per-round ratios, and the last outputs."""
    peer_s, ours_s, ratios, loads = [], [], [], []
    out_peer = out_ours = None
    for _ in range(repeats):
        start = time.perf_counter()
        out_peer = peer()
        peer_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        out_ours = ours()
        ours_s.append(time.perf_counter() - start)
        ratios.append(peer_s[-1] / ours_s[-1])
        loads.append(os.getloadavg()[0])
    return statistics.median(peer_s), statistics.median(ours_s), statistics.median(ratios), out_peer, out_ours


def quiet(metric: Any, **call: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return metric(**call)


def cam_like_maps(n: int, side: int = 224, seed: int = 0) -> np.ndarray:
    grid = torch.relu(torch.randn(n, 1, 7, 7, generator=torch.Generator().manual_seed(seed)))
    maps = torch.nn.functional.interpolate(grid, size=(side, side), mode="bilinear", align_corners=False)[:, 0]
    maps = maps / maps.flatten(1).amax(1).clamp(min=1e-12)[:, None, None]
    return maps.numpy().astype(np.float64)


def box_masks(n: int, side: int = 224, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, side, side), bool)
    for i in range(n):
        r, c = rng.integers(0, side // 2, size=2)
        masks[i, r : r + rng.integers(20, side // 2), c : c + rng.integers(20, side // 2)] = True
    return masks


def segmentation_oracle(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    from sklearn.metrics import average_precision_score, jaccard_score

    out = []
    for m, s in zip(maps, masks):
        r = (m - m.min()) / (m.max() - m.min())
        fg, truth = (r > r.mean()).ravel(), s.ravel()
        out.append((jaccard_score(truth, fg) + jaccard_score(~truth, ~fg)) / 2)
        average_precision_score(np.concatenate([~truth, truth]), np.concatenate([1 - r.ravel(), r.ravel()]))
    return np.array(out)


def maps_section(n: int, repeats: int) -> list[Row]:
    a, s = cam_like_maps(n), box_masks(n)
    x = np.zeros((n, 3, 224, 224), np.float32)
    y = np.zeros(n, int)
    flags = np.zeros((n, 4), int)
    flags[:, [0, 3]] = 1
    tiles = np.zeros_like(s)
    tiles[:, :112, :112] = tiles[:, 112:, 112:] = True
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 2))  # Quantus's Focus wants one; unused
    cases: list[tuple[str, Any, Callable[[], Any], dict[str, Any]]] = [
        ("sparseness", quantus.Sparseness, lambda: sparseness(a).scores, {}),
        ("complexity", quantus.Complexity, lambda: complexity(a).scores, {}),
        ("effective_complexity", quantus.EffectiveComplexity, lambda: effective_complexity(a).scores, {}),
        ("top_k_intersection", quantus.TopKIntersection, lambda: top_k_intersection(a, s).scores, {"s_batch": s}),
        (
            "attribution_localisation",
            quantus.AttributionLocalisation,
            lambda: attribution_localisation(a, s).scores,
            {"s_batch": s},
        ),
        ("auc", quantus.AUC, lambda: auc(a, s).scores, {"s_batch": s}),
        ("focus", quantus.Focus, lambda: focus(a, tiles).scores, {"custom_batch": flags, "model": model}),
    ]
    rows: list[Row] = []
    for name, peer_cls, ours, extra in cases:
        metric = peer_cls(normalise_func_kwargs=PER_IMAGE, disable_warnings=True)
        call = {"model": None, "x_batch": x, "y_batch": y, "a_batch": None, **extra}
        if "s_batch" in call:
            call["s_batch"] = call["s_batch"][:, None].astype(np.float64)

        def peer(metric: Any = metric, call: dict[str, Any] = call) -> Any:
            return np.asarray(quiet(metric, **{**call, "a_batch": a.copy()}), dtype=np.float64)

        print(f"{name} ...", file=sys.stderr, flush=True)
        peer_s, ours_s, ratio, out_peer, out_ours = timed(peer, ours, repeats)
        rows.append((name, peer_s, ours_s, ratio, float(np.nanmax(np.abs(out_peer - out_ours))), os.getloadavg()[0]))
    print("segmentation ...", file=sys.stderr, flush=True)
    peer_s, ours_s, ratio, out_peer, out_ours = timed(
        lambda: segmentation_oracle(a, s), lambda: segmentation(a, s).miou, repeats
    )
    rows.append(
        (
            "segmentation (vs per-image sklearn)",
            peer_s,
            ours_s,
            ratio,
            float(np.abs(out_peer - out_ours).max()),
            os.getloadavg()[0],
        )
    )
    return rows


def randomisation_section(images: int, side: int, nr_samples: int, repeats: int, bounds: list[Row]) -> list[Row]:
    """The randomisation rows; ``bounds`` gets each metric's Quantus time against the work no implementation
    can skip (its floor), timed interleaved as the rows are."""
    from contextlib import closing

    import quantus.metrics.randomisation.smooth_mprt as smooth_module

    from camscope.metrics.randomisation import quantus_layers
    from camscope.metrics.sanity import cascade, cascade_steps

    torch.manual_seed(0)
    # no BatchNorm: Quantus resets it to ones and zeros (and its running statistics), camscope redraws it
    model = torchvision.models.resnet18(weights=None, num_classes=10, norm_layer=lambda c: torch.nn.Identity()).eval()
    x = torch.randn(images, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1).numpy()
    run = explainer("gradcam", {"layers": ["layer4"]})

    def quantus_explain(model: Any, inputs: Any, targets: Any, **kwargs: Any) -> np.ndarray:
        t = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
        return run(model, t, [int(v) for v in targets]).numpy()

    smooth_module.quantus.explain = quantus_explain
    a = quantus_explain(model, x.numpy(), y)
    common = {"model": model, "x_batch": x.numpy(), "y_batch": y, "explain_func": quantus_explain}
    ours_kw: dict[str, Any] = {"explain_func": "gradcam", "explain_func_kwargs": {"layers": ["layer4"]}}
    classes = [int(v) for v in y]
    rows: list[Row] = []

    def seeded_smooth_peer() -> Any:
        np.random.seed(42)
        metric = quantus.SmoothMPRT(
            nr_samples=nr_samples, skip_layers=True, return_last_correlation=True, disable_warnings=True
        )
        with torch.random.fork_rng():
            return np.asarray(quiet(metric, **common, a_batch=a.copy()), dtype=np.float64)

    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        (
            "random_logit",
            lambda: np.asarray(
                quiet(
                    quantus.RandomLogit(num_classes=10, normalise_func_kwargs=PER_IMAGE, disable_warnings=True),
                    **common,
                    a_batch=a.copy(),
                )
            ),
            lambda: random_logit(model, x, a, classes, num_classes=10, **ours_kw).scores,
        ),
        (
            "efficient_mprt",
            lambda: np.asarray(quiet(quantus.EfficientMPRT(disable_warnings=True), **common, a_batch=a.copy())),
            lambda: efficient_mprt(model, x, a, classes, **ours_kw).scores,
        ),
        (
            f"smooth_mprt ({nr_samples} samples, skip_layers)",
            seeded_smooth_peer,
            lambda: smooth_mprt(model, x, a, classes, nr_samples=nr_samples, skip_layers=True, **ours_kw).scores,
        ),
    ]
    for name, peer, ours in cases:
        print(f"{name} ...", file=sys.stderr, flush=True)
        with torch.random.fork_rng():
            peer_s, ours_s, ratio, out_peer, out_ours = timed(peer, ours, repeats)
        rows.append(
            (name, peer_s, ours_s, ratio, float(np.nanmax(np.abs(np.asarray(out_peer) - out_ours))), os.getloadavg()[0])
        )

    def randomise() -> None:  # every layer, under Quantus's seed; in place, restored at the end
        with closing(cascade(model, cascade_steps(model, quantus_layers(model, "bottom_up")), 42, 43)) as steps:
            for _ in steps:
                pass

    def explain_samples() -> None:  # one model's nr_samples copies of the images, 64 rows a call
        for chunk in torch.split(x.repeat(nr_samples, 1, 1, 1), 64):
            run(model, chunk, (classes * nr_samples)[: len(chunk)])

    # The work no implementation can skip, timed against the same Quantus calls: random_logit explains
    # the images once; Efficient MPRT explains the randomised model once (the maps given stand for the
    # trained model's); Smooth MPRT explains the noisy copies on both models.
    floors = [
        lambda: run(model, x, classes),
        lambda: (randomise(), run(model, x, classes)),
        lambda: (randomise(), explain_samples(), explain_samples()),
    ]
    for (name, peer, _), floor in zip(cases, floors):
        print(f"{name} floor ...", file=sys.stderr, flush=True)
        with torch.random.fork_rng():
            peer_s, floor_s, ratio, _, _ = timed(peer, floor, repeats)
        bounds.append((name, peer_s, floor_s, ratio, float("nan"), os.getloadavg()[0]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--maps", type=int, default=64, help="maps in the maps section (Quantus's batch size)")
    parser.add_argument("--images", type=int, default=8, help="images in the randomisation section")
    parser.add_argument("--side", type=int, default=64, help="image side in the randomisation section")
    parser.add_argument("--nr-samples", type=int, default=10, help="Smooth MPRT noise samples")
    parser.add_argument("--sections", default="maps,randomisation")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: on a shared CPU, more threads slow torch)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sections = args.sections.split(",")
    if unknown := set(sections) - {"maps", "randomisation"}:
        parser.error(f"unknown sections {sorted(unknown)}")
    if not hasattr(np, "trapz"):  # Quantus 0.6.0 calls np.trapz, removed in NumPy 2.4 (same function)
        np.trapz = np.trapezoid  # type: ignore[attr-defined]
    rows: list[Row] = []
    if "maps" in sections:
        rows += maps_section(args.maps, args.repeats)
    bounds: list[Row] = []
    if "randomisation" in sections:
        rows += randomisation_section(args.images, args.side, args.nr_samples, args.repeats, bounds)
    lines = [
        f"`{invocation('benchmarks.bench_metric_families_b')}`: {torch.get_num_threads()} torch threads, "
        f"medians of {args.repeats} interleaved runs, peak RSS {peak_rss_mb():.0f} MB",
        "",
        "| metric | Quantus 0.6.0 s | camscope s | ratio | max abs diff | load |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {n} | {p:.4f} | {o:.4f} | {r:.1f}× | {d:.1e} | {load:.1f} |" for n, p, o, r, d, load in rows],
    ]
    if bounds:
        lines += [
            "",
            "| floor of | Quantus 0.6.0 s | floor s | best possible ratio | load |",
            "|---|---:|---:|---:|---:|",
            *[f"| {n} | {p:.4f} | {f:.4f} | {r:.1f}× | {load:.1f} |" for n, p, f, r, _, load in bounds],
        ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
