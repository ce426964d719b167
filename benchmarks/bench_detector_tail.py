"""Ablation-CAM at a torchvision detector's backbone: the heads-only tail against camscope's own full forwards.

Random weights (seeded, nothing downloaded), every anchor kept (``score_thresh=0``: a random head scores ~0.01),
the first two detections of a seeded random image as the box target; one call per strategy, the maps' max |diff|.
The full forwards already skip the backbone (its output is replaced), so the ratio is what running only the
heads, with untouched pyramid levels scored once per image, saves beyond that. (pytorch-grad-cam's Ablation-CAM
runs the same full forwards, with its backbone computed: ``bench_tasks --cases det1_ablationcam``.)

    python -m benchmarks.bench_detector_tail [--models retinanet_resnet50_fpn,fcos_resnet50_fpn] [--side 256]

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torchvision

import camscope
from camscope.core.targets import BoxScoreTarget
from camscope.models.reshape import FeaturePyramidToGrid


def measure(name: str, side: int) -> tuple[float, float, float]:
    """(tail s, full-forward s, max |map diff|) of one Ablation-CAM call each on ``name`` at ``side`` px."""
    torch.manual_seed(0)
    model = torchvision.models.get_model(
        name, weights=None, weights_backbone=None, min_size=side, max_size=side * 5 // 4, score_thresh=0.0
    ).eval()
    x = torch.rand(1, 3, 200, 250, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        found = model(x)[0]
    target = BoxScoreTarget(found["labels"][:2], found["boxes"][:2])
    seconds, maps = [], []
    for use_tail in (True, False):
        cam = camscope.AblationCAM(model, [model.backbone], FeaturePyramidToGrid(), use_tail=use_tail)
        start = time.perf_counter()
        maps.append(cam(x, target))
        seconds.append(time.perf_counter() - start)
        assert cam.last_strategy == ("detector-heads" if use_tail else "full-forward"), cam.last_strategy
    return seconds[0], seconds[1], float(np.abs(maps[0] - maps[1]).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="retinanet_resnet50_fpn,fcos_resnet50_fpn")
    parser.add_argument("--side", type=int, default=256, help="the detector's min_size (max_size: 5/4 of it)")
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}; one call per strategy")
    print("| model | side | heads only s | full forwards s | ratio | max abs diff | load |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        tail, full, diff = measure(name, args.side)
        load = os.getloadavg()[0]
        print(f"| {name} | {args.side} | {tail:.1f} | {full:.1f} | {tail / full:.2f} | {diff:.1e} | {load:.1f} |")


if __name__ == "__main__":
    main()
