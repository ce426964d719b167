"""Benchmark of camscope.metrics against bare forward passes and against pytorch-grad-cam 1.5.7.

ResNet50 (torchvision, random weights) at 224x224, one image and one CAM-like map:

1. deletion + insertion (RISE, step = 224 pixels: 2 x 225 scored images) against the same number of
   bare forward passes at the same batch size — the metric's overhead over the model's own cost
   (target: ratio <= 1.25);
2. the same two curves computed the way the seed repository did: one forward pass per step;
3. ROAD (9 percentiles x MoRF/LeRF) in ``compat="pytorch-grad-cam"`` mode against pytorch-grad-cam's
   ROADCombined with the same seed — the imputed images are the same (checked) — both for the whole
   metric and for the imputation alone (target: >= 5x).

Medians over ``--repeats`` runs; peak RSS (ru_maxrss) after each section. ``--quick`` uses 4x larger
deletion steps and one repeat. Run: ``python benchmarks/bench_metrics.py [--quick]``.
"""

from __future__ import annotations

import argparse
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

from camscope.metrics import deletion, insertion, road
from camscope.metrics.imputation import impute_batch
from camscope.metrics.perturbation import gaussian_blur, normalised_auc
from camscope.metrics.road import _pytorch_grad_cam_keep

PERCENTILES = [10, 20, 30, 40, 50, 60, 70, 80, 90]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        print(f"  {getattr(fn, '__name__', 'run')}: {times[-1]:.2f} s", file=sys.stderr, flush=True)
    return statistics.median(times), out


def cam_like_map(size: int = 224, seed: int = 0) -> np.ndarray:
    """A Grad-CAM-shaped map: a ReLU'd random 7x7 grid, bilinearly upsampled, min-max scaled."""
    grid = torch.relu(torch.randn(1, 1, 7, 7, generator=torch.Generator().manual_seed(seed)) + 0.3)
    up = torch.nn.functional.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    up = (up - up.min()) / (up.max() - up.min())
    return up.numpy().astype(np.float32)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4x coarser deletion steps, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    step = 224 * (4 if args.quick else 1)
    bs = args.batch_size

    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    cam = cam_like_map()
    rows: list[tuple[str, float, str, float]] = []
    n_forwards = 2 * (-(-224 * 224 // step) + 1)

    bare_forwards(model, bs, bs, x)  # warm-up
    t_bare, _ = median_time(lambda: bare_forwards(model, n_forwards, bs, x), repeats)
    rows.append((f"{n_forwards} bare forward passes (batch {bs})", t_bare, "1.00", peak_rss_mb()))

    def ours() -> tuple[float, float]:
        d = deletion(model, x, cam[None], step=step, batch_size=bs)
        i = insertion(model, x, cam[None], step=step, batch_size=bs)
        return float(d.auc[0]), float(i.auc[0])

    t_ours, aucs = median_time(ours, repeats)
    rows.append((f"camscope deletion + insertion (batch {bs})", t_ours, f"{t_ours / t_bare:.2f}", peak_rss_mb()))
    t_seed, seed_aucs = median_time(lambda: seed_style_curves(model, x, cam, step), 1)
    rows.append(("seed-style loop, one forward per step", t_seed, f"{t_seed / t_bare:.2f}", peak_rss_mb()))
    assert np.allclose(aucs, seed_aucs, atol=1e-4), (aucs, seed_aucs)

    # ROAD: whole metric, same seed -> same imputed images and the same scores
    targets = [PgcTarget(int(model(x).argmax()))]

    def theirs_road() -> np.ndarray:
        torch.manual_seed(7)
        return pgc_road.ROADCombined(PERCENTILES)(x, cam[None], targets, model)

    def ours_road() -> np.ndarray:
        return road(
            model, x, cam[None], targets, percentages=PERCENTILES, compat="pytorch-grad-cam", seed=7, batch_size=bs
        ).combined

    t_pgc, ref = median_time(theirs_road, 1)
    rows.append(("pytorch-grad-cam ROADCombined (9 pct x 2 orders)", t_pgc, "1.00", peak_rss_mb()))
    t_road, got = median_time(ours_road, repeats)
    assert np.allclose(ref, got, atol=1e-4), (ref, got)
    rows.append(("camscope road(compat='pytorch-grad-cam')", t_road, f"{t_pgc / t_road:.1f}x faster", peak_rss_mb()))

    # imputation alone: the same 18 masks through both imputers
    maps = torch.from_numpy(cam[None])
    keep = _pytorch_grad_cam_keep(maps, PERCENTILES, ["lerf", "morf"])
    masks = torch.cat([keep["lerf"][:, 0], keep["morf"][:, 0]])
    images = x.expand(len(masks), -1, -1, -1)

    def theirs_impute() -> torch.Tensor:
        torch.manual_seed(3)
        imputer = pgc_road.NoisyLinearImputer()
        return torch.stack([imputer(x[0], m.float()) for m in masks])

    def ours_impute() -> torch.Tensor:
        return impute_batch(images, masks, noise=0.01, generator=torch.Generator().manual_seed(3))

    t_pi, ref_img = median_time(theirs_impute, 1)
    t_oi, our_img = median_time(ours_impute, repeats)
    diff = float((ref_img - our_img).abs().max())
    rows.append(("pytorch-grad-cam imputation, 18 masks", t_pi, "1.00", peak_rss_mb()))
    rows.append(
        (f"camscope imputation, 18 masks (max |diff| {diff:.1e})", t_oi, f"{t_pi / t_oi:.1f}x faster", peak_rss_mb())
    )

    print(
        f"\nResNet50 224x224, random weights, {torch.get_num_threads()} threads, "
        f"deletion step {step}, medians of {repeats}\n"
    )
    print("| measurement | seconds | ratio | peak RSS MB |")
    print("|---|---:|---:|---:|")
    for name, seconds, ratio, rss in rows:
        print(f"| {name} | {seconds:.2f} | {ratio} | {rss:.0f} |")


if __name__ == "__main__":
    main()
