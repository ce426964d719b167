"""Benchmark of camscope.metrics against bare forward passes and against pytorch-grad-cam 1.5.7.

ResNet50 (torchvision, random weights) at 224x224, one image and one CAM-like map. Two sections:

``curves``
    1. deletion + insertion (RISE, step = 224 pixels: 2 x 225 scored images) against the same number of
       bare forward passes at the same batch size — the metric's overhead over the model's own cost
       (target: ratio <= 1.25);
    2. the same two curves computed the way the seed repository did: one forward pass per step.
``road``
    3. ROAD (9 percentiles x LeRF/MoRF) in ``compat="pytorch-grad-cam"`` mode against pytorch-grad-cam's
       ROADCombined with the same seed — the imputed images are the same (checked);
    4. the imputation alone: the same 18 masks through both imputers (target: >= 5x), timed interleaved
       (peer, ours, peer, ours, ...) so load from elsewhere hits both alike; the ratio is the median of
       the per-repeat ratios, and the max |difference| of the imputed images is printed.

Medians over ``--repeats`` interleaved runs, the load average beside them; peak RSS (ru_maxrss) after
each section. ``--quick`` uses 4x larger deletion steps. The table goes to stdout, and with
``--write-readme`` into README.md between the ``bench:metrics`` markers.

    python -m benchmarks.bench_metrics [--quick] [--repeats 3] [--sections curves,road] [--write-readme]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
import torchvision
from pytorch_grad_cam.metrics import road as pgc_road
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget as PgcTarget

from benchmarks.readme_tables import invocation, publish
from camscope.metrics import deletion, insertion, road
from camscope.metrics.deletion import gaussian_blur, normalised_auc
from camscope.metrics.imputation import impute_batch
from camscope.metrics.road import _pytorch_grad_cam_keep

PERCENTILES = [10, 20, 30, 40, 50, 60, 70, 80, 90]
Row = tuple[str, float, str, float, float]  # name, seconds, ratio, peak RSS MB, load average


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> tuple[dict[str, list[float]], dict, float]:
    """Time the callables in turn, ``repeats`` rounds; returns the times, the last outputs, the median load."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    outputs: dict[str, object] = {}
    loads = []
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - start)
            print(f"  {name}: {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
        loads.append(os.getloadavg()[0])
    return times, outputs, statistics.median(loads)


def cam_like_map(size: int = 224, seed: int = 0) -> np.ndarray:
    """A Grad-CAM-shaped map: a ReLU'd random 7x7 grid, bilinearly upsampled, min-max scaled."""
    grid = torch.relu(torch.randn(1, 1, 7, 7, generator=torch.Generator().manual_seed(seed)) + 0.3)
    up = torch.nn.functional.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    up = (up - up.min()) / (up.max() - up.min())
    return up.numpy().astype(np.float32)


def road_masks(cam: np.ndarray) -> torch.Tensor:
    """The 18 keep masks (LeRF then MoRF, 9 percentiles each) pytorch-grad-cam's ROADCombined imputes."""
    keep = _pytorch_grad_cam_keep(torch.from_numpy(cam[None]), PERCENTILES, ["lerf", "morf"])
    return torch.cat([keep["lerf"][:, 0], keep["morf"][:, 0]])


def bare_forwards(model: torch.nn.Module, count: int, batch_size: int, x: torch.Tensor) -> None:
    batch = x.expand(batch_size, -1, -1, -1).contiguous()
    with torch.inference_mode():
        done = 0
        while done < count:
            take = min(batch_size, count - done)
            model(batch[:take])
            done += take


def seed_style_curves(model: torch.nn.Module, x: torch.Tensor, cam: np.ndarray, step: int) -> list[float]:
    """One forward pass per step on a clone, as the seed repository ran deletion and insertion."""
    aucs = []
    order = np.argsort(-cam.reshape(-1), kind="stable")
    n_steps = -(-cam.size // step)
    with torch.no_grad():
        target = int(model(x).argmax())
        for start, finish in ((x.clone(), torch.zeros_like(x)), (gaussian_blur(x), x.clone())):
            scores = []
            for i in range(n_steps + 1):
                scores.append(float(torch.softmax(model(start), 1)[0, target]))
                coords = order[step * i : step * (i + 1)]
                start.view(1, 3, -1)[0, :, coords] = finish.view(1, 3, -1)[0, :, coords]
            aucs.append(float(normalised_auc(np.array(scores))))
    return aucs


def curves_section(
    model: torch.nn.Module, x: torch.Tensor, cam: np.ndarray, step: int, bs: int, repeats: int
) -> list[Row]:
    n_forwards = 2 * (-(-224 * 224 // step) + 1)

    def ours() -> tuple[float, float]:
        d = deletion(model, x, cam[None], step=step, batch_size=bs)
        i = insertion(model, x, cam[None], step=step, batch_size=bs)
        return float(d.auc[0]), float(i.auc[0])

    bare_forwards(model, bs, bs, x)  # warm-up
    times, out, load = interleaved({"bare": lambda: bare_forwards(model, n_forwards, bs, x), "ours": ours}, repeats)
    t_bare, t_ours = statistics.median(times["bare"]), statistics.median(times["ours"])
    rows: list[Row] = [
        (f"{n_forwards} bare forward passes (batch {bs})", t_bare, "1.00", peak_rss_mb(), load),
        (f"camscope deletion + insertion (batch {bs})", t_ours, f"{t_ours / t_bare:.2f}", peak_rss_mb(), load),
    ]
    seed_times, seed_out, seed_load = interleaved({"seed": lambda: seed_style_curves(model, x, cam, step)}, 1)
    assert np.allclose(out["ours"], seed_out["seed"], atol=1e-4), (out["ours"], seed_out["seed"])
    t_seed = seed_times["seed"][0]
    rows.append(
        ("seed-style loop, one forward per step (once)", t_seed, f"{t_seed / t_bare:.2f}", peak_rss_mb(), seed_load)
    )
    return rows


def road_section(model: torch.nn.Module, x: torch.Tensor, cam: np.ndarray, bs: int, repeats: int) -> list[Row]:
    targets = [PgcTarget(int(model(x).argmax()))]

    def theirs_road() -> np.ndarray:
        torch.manual_seed(7)
        return pgc_road.ROADCombined(PERCENTILES)(x, cam[None], targets, model)

    def ours_road() -> np.ndarray:
        result = road(
            model, x, cam[None], targets, percentages=PERCENTILES, compat="pytorch-grad-cam", seed=7, batch_size=bs
        )
        return result.combined

    # the whole metric (minutes for the peer): one round
    times, out, load = interleaved({"peer ROADCombined": theirs_road, "camscope road": ours_road}, 1)
    assert np.allclose(out["peer ROADCombined"], out["camscope road"], atol=1e-4), out
    t_pgc, t_road = times["peer ROADCombined"][0], times["camscope road"][0]
    rows: list[Row] = [
        ("pytorch-grad-cam ROADCombined (9 pct x 2 orders, once)", t_pgc, "1.00", peak_rss_mb(), load),
        (
            "camscope road(compat='pytorch-grad-cam'), same scores",
            t_road,
            f"{t_pgc / t_road:.1f}x faster",
            peak_rss_mb(),
            load,
        ),
    ]

    # the imputation alone: the same 18 masks through both imputers, interleaved
    masks = road_masks(cam)
    images = x.expand(len(masks), -1, -1, -1)

    def theirs_impute() -> torch.Tensor:
        torch.manual_seed(3)
        imputer = pgc_road.NoisyLinearImputer()
        return torch.stack([imputer(x[0], m.float()) for m in masks])

    def ours_impute() -> torch.Tensor:
        return impute_batch(images, masks, noise=0.01, generator=torch.Generator().manual_seed(3))

    times, out, load = interleaved({"peer imputation": theirs_impute, "camscope imputation": ours_impute}, repeats)
    diff = float((out["peer imputation"] - out["camscope imputation"]).abs().max())
    ratio = statistics.median(p / o for p, o in zip(times["peer imputation"], times["camscope imputation"]))
    t_pi, t_oi = statistics.median(times["peer imputation"]), statistics.median(times["camscope imputation"])
    rows.append(("pytorch-grad-cam imputation, 18 masks", t_pi, "1.00", peak_rss_mb(), load))
    rows.append(
        (f"camscope imputation, 18 masks (max abs diff {diff:.1e})", t_oi, f"{ratio:.1f}x faster", peak_rss_mb(), load)
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4x coarser deletion steps")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sections", default="curves,road", help="comma-separated: curves, road")
    parser.add_argument("--write-readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()
    sections = args.sections.split(",")
    if unknown := set(sections) - {"curves", "road"}:
        parser.error(f"unknown sections {sorted(unknown)}")
    step = 224 * (4 if args.quick else 1)

    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    cam = cam_like_map()
    rows: list[Row] = []
    if "curves" in sections:
        rows += curves_section(model, x, cam, step, args.batch_size, args.repeats)
    if "road" in sections:
        rows += road_section(model, x, cam, args.batch_size, args.repeats)

    command = invocation("benchmarks.bench_metrics")
    lines = [
        f"`{command}`: ResNet-50 224×224, random weights, {torch.get_num_threads()} threads, "
        + (f"deletion step {step}, " if "curves" in sections else "")
        + f"sections: {', '.join(sections)}; medians of {args.repeats} interleaved runs unless marked once; "
        "load = load average during the measurement",
        "",
        "| measurement | seconds | ratio | peak RSS MB | load |",
        "|---|---:|---:|---:|---:|",
        *[f"| {name} | {seconds:.2f} | {ratio} | {rss:.0f} | {load:.1f} |" for name, seconds, ratio, rss, load in rows],
    ]
    publish("metrics", "\n".join(lines), args.write_readme)


if __name__ == "__main__":
    main()
