"""Time camscope's CAMs on segmentation models and detectors against pytorch-grad-cam 1.5.7 in the same run.

Each case runs camscope natively (the bare torchvision model: its dict / detection-list output read by
camscope's adapters), the peer as its tutorials run it (``SegmentationModelOutputWrapper`` +
``SemanticSegmentationTarget``; ``fasterrcnn_reshape_transform`` + ``FasterRCNNBoxScoreTarget``, and
``AblationLayerFasterRCNN`` for Ablation-CAM), and one plain forward+backward pass of the model on the
same target, interleaved (ours, peer, plain, ours, …), and prints medians and the same-run ratios with
the max |difference| of the two maps, the peak RSS and the load average. Random weights (seeded); each
library has its own copy of the model, so neither pays for the other's hooks. Ablation-CAM (1,280
detector forwards for the peer) is timed in rounds of (ours, peer, peer, ours), with each call's wall
and process CPU time printed.

    python -m benchmarks.bench_tasks                   # every case (~5 min on 2 idle cores)
    python -m benchmarks.bench_tasks --cases seg_deeplab,det_eigencam --repeats 5
    python -m benchmarks.bench_tasks --cases det_ablationcam --slow-rounds 2
    python -m benchmarks.bench_tasks --cases det1_ablationcam --slow-rounds 2   # RetinaNet

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torchvision

Call = Callable[[], Any]


class _OutOf(torch.nn.Module):
    """The peer tutorial's SegmentationModelOutputWrapper: ``model(x)["out"]``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]


def _model(name: str, **kwargs: Any) -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None, weights_backbone=None, **kwargs).eval()


def _peer_copy(model: torch.nn.Module, layers: list[torch.nn.Module]) -> tuple[torch.nn.Module, list[torch.nn.Module]]:
    """The peer's own copy of ``model`` and of its target layers: the peer registers its hooks when it is
    constructed and keeps them, so on a shared model they would run (its reshape transform included) inside
    camscope's and the plain pass's forwards too."""
    names = {id(module): name for name, module in model.named_modules()}
    clone = copy.deepcopy(model)
    return clone, [clone.get_submodule(names[id(layer)]) for layer in layers]


def _sign_corrected_peer() -> None:
    """The peer's Eigen projection with its own sign correction: the convention camscope uses."""
    from pytorch_grad_cam import base_cam, eigen_cam
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction

    for module in (base_cam, eigen_cam):
        module.get_2d_projection = get_2d_projection_with_sign_correction  # type: ignore[attr-defined]


def segmentation(name: str, side: int, seed: int = 1) -> tuple[Call, Call, Call]:
    """Grad-CAM at the inferred backbone layer for the class on most pixels, over the pixels where it is predicted.

    ``seed`` picks the input: with random weights some inputs give an all-zero map (every channel weight
    negative), which would make the comparison of the two maps empty."""
    from pytorch_grad_cam import GradCAM as PeerGradCAM
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    import camscope
    from camscope.models import infer_cam_layers

    model = _model(name, num_classes=21)
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(seed))
    layers, _ = infer_cam_layers(model, (side, side))
    with torch.no_grad():
        out = model(x)["out"][0]
    category = int(torch.bincount(out.argmax(0).flatten(), minlength=21).argmax())
    mask = (out.argmax(0) == category).float()
    ours_cam = camscope.GradCAM(model, layers)
    peer_model, peer_layers = _peer_copy(model, layers)
    peer_cam = PeerGradCAM(_OutOf(peer_model), peer_layers)
    peer_target = SemanticSegmentationTarget(category, mask.numpy())

    def plain() -> None:
        (model(x.clone().requires_grad_(True))["out"][0, category] * mask).sum().backward()
        model.zero_grad(set_to_none=True)

    return (lambda: ours_cam(x, category)), (lambda: peer_cam(x, [peer_target])), plain


def _detections(model: torch.nn.Module, x: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        found = model(x)[0]
    return found["labels"][:keep], found["boxes"][:keep]


def detection_eigencam(name: str, side: int) -> tuple[Call, Call, Call]:
    """Eigen-CAM on the detector's feature pyramid (the peer's Faster R-CNN tutorial)."""
    from pytorch_grad_cam import EigenCAM as PeerEigenCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
    from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform

    import camscope
    from camscope.core.targets import BoxScoreTarget
    from camscope.models import infer_cam_layers

    _sign_corrected_peer()
    model = _model(name, num_classes=5, min_size=side, max_size=side)  # random: 5 classes score above 0.05
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))
    labels, boxes = _detections(model, x, keep=3)
    layers, reshape = infer_cam_layers(model, (side, side))
    ours_cam = camscope.EigenCAM(model, layers, reshape)
    peer_model, peer_layers = _peer_copy(model, [model.backbone])
    peer_cam = PeerEigenCAM(peer_model, peer_layers, reshape_transform=fasterrcnn_reshape_transform)
    target, peer_target = BoxScoreTarget(labels, boxes), FasterRCNNBoxScoreTarget(labels, boxes)
    return (lambda: ours_cam(x, target)), (lambda: peer_cam(x, [peer_target])), _detector_plain(model, x, peer_target)


def _detector_plain(model: torch.nn.Module, x: torch.Tensor, target: Any) -> Call:
    def plain() -> None:
        target(model(x.clone().requires_grad_(True))[0]).sum().backward()
        model.zero_grad(set_to_none=True)

    return plain


def _ablation_pair(model: torch.nn.Module, side: int, peer_reshape: Any, peer_layer: Any) -> tuple[Call, Call, Call]:
    """Ablation-CAM at ``model``'s pyramid (its first two detections of a seeded random image as the target):
    camscope with -1000 ablations, the peer with ``peer_reshape`` and its ablation layer ``peer_layer``."""
    from pytorch_grad_cam import AblationCAM as PeerAblationCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget

    import camscope
    from camscope.core.targets import BoxScoreTarget
    from camscope.models.reshape import FeaturePyramidToGrid

    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))
    labels, boxes = _detections(model, x, keep=2)
    layers = [model.backbone]
    ours_cam = camscope.AblationCAM(model, layers, FeaturePyramidToGrid(), ablation_value=-1000.0, progress=False)
    peer_model, peer_layers = _peer_copy(model, layers)
    peer_cam = PeerAblationCAM(peer_model, peer_layers, peer_reshape, ablation_layer=peer_layer, batch_size=64)
    target, peer_target = BoxScoreTarget(labels, boxes), FasterRCNNBoxScoreTarget(labels, boxes)
    return (lambda: ours_cam(x, target)), (lambda: peer_cam(x, [peer_target])), _detector_plain(model, x, peer_target)


def detection_ablationcam(side: int) -> tuple[Call, Call, Call]:
    """Ablation-CAM on a Faster R-CNN pyramid of five 256-channel levels (what the peer's AblationLayerFasterRCNN
    is written for): the tests' tiny body with 10 proposals (tests/tasks/test_detection.py), so 1,280 full
    detector forwards per library stay affordable."""
    from pytorch_grad_cam.ablation_layer import AblationLayerFasterRCNN
    from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform

    from tests.tasks.test_detection import small_faster_rcnn

    return _ablation_pair(small_faster_rcnn(side), side, fasterrcnn_reshape_transform, AblationLayerFasterRCNN())


def detection_one_stage_ablationcam(side: int, channels: int) -> tuple[Call, Call, Call]:
    """Ablation-CAM on a RetinaNet pyramid of five ``channels``-wide levels ('0'..'2', 'p6', 'p7'), the tests'
    tiny body (tests/tasks/test_detection.py). The peer's AblationLayerFasterRCNN names Faster R-CNN's levels
    and assumes 256 channels, so its side uses the same layer with this pyramid's names and width, as a peer
    user would write it."""
    from pytorch_grad_cam.ablation_layer import AblationLayerFasterRCNN

    from camscope.models.reshape import FeaturePyramidToGrid
    from tests.tasks.test_detection import small_one_stage

    class PyramidAblationLayer(AblationLayerFasterRCNN):  # type: ignore[misc]
        def __call__(self, x: Any) -> Any:
            result = self.activations
            keys = list(result)
            for row in range(result[keys[-1]].size(0)):
                level, channel = divmod(int(self.indices[row]), channels)
                result[keys[level]][row, channel] = -1000
            return result

    model = small_one_stage("retinanet", side, channels)
    return _ablation_pair(model, side, FeaturePyramidToGrid(), PyramidAblationLayer())


CASES: dict[str, tuple[str, Callable[[], tuple[Call, Call, Call]], bool]] = {
    "seg_deeplab": (
        "Grad-CAM, deeplabv3_mobilenet_v3_large 256²",
        lambda: segmentation("deeplabv3_mobilenet_v3_large", 256, seed=3),
        False,
    ),
    "seg_lraspp": (
        "Grad-CAM, lraspp_mobilenet_v3_large 256²",
        lambda: segmentation("lraspp_mobilenet_v3_large", 256),
        False,
    ),
    "seg_fcn": ("Grad-CAM, fcn_resnet50 256²", lambda: segmentation("fcn_resnet50", 256), False),
    "det_eigencam": (
        "Eigen-CAM, fasterrcnn_mobilenet_v3_large_fpn 320²",
        lambda: detection_eigencam("fasterrcnn_mobilenet_v3_large_fpn", 320),
        False,
    ),
    "det_ablationcam": ("Ablation-CAM, Faster R-CNN tiny 5-level FPN 32²", lambda: detection_ablationcam(32), True),
    "det1_ablationcam": (
        "Ablation-CAM, RetinaNet tiny 5-level 64-channel FPN 128²",
        lambda: detection_one_stage_ablationcam(128, 64),
        True,
    ),
}


def measure(case: str, repeats: int, slow_rounds: int = 1) -> dict[str, Any]:
    """Interleaved medians (ours, peer, plain); a slow case runs ``slow_rounds`` rounds of (ours, peer,
    peer, ours), plain once after the first pair. Each call's process CPU time is kept beside its wall
    time: on a shared machine it moves less with the other processes' load."""
    _, build, slow = CASES[case]
    ours, peer, plain = build()
    times: dict[str, list[float]] = {"ours": [], "peer": [], "plain": []}
    cpu: dict[str, list[float]] = {"ours": [], "peer": [], "plain": []}

    def timed(name: str, fn: Call) -> Any:
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        times[name].append(time.perf_counter() - start)
        cpu[name].append(time.process_time() - start_cpu)
        return out

    ours_map = timed("ours", ours) if slow else ours()
    peer_map = timed("peer", peer) if slow else peer()
    timed("plain", plain) if slow else plain()
    order = ("peer", "ours") + ("ours", "peer", "peer", "ours") * (slow_rounds - 1) if slow else ()
    for name in order:  # the reverse order too, so neither library always runs first (warm-up) or last
        timed(name, {"ours": ours, "peer": peer}[name])
    for _ in range(0 if slow else repeats):
        timed("ours", ours)
        timed("peer", peer)
        timed("plain", plain)
    medians = {k: statistics.median(v) for k, v in times.items()}
    diff = float(np.abs(np.asarray(ours_map) - np.asarray(peer_map)).max())
    return {"medians": medians, "times": times, "cpu": cpu, "diff": diff, "load": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated: {', '.join(CASES)}")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per fast case (default 5)")
    parser.add_argument(
        "--slow-rounds", type=int, default=1, help="rounds of (ours, peer, peer, ours) per slow case (default 1)"
    )
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    torch.manual_seed(0)
    print(
        f"torch threads {torch.get_num_threads()}; medians of {args.repeats} interleaved calls "
        f"(slow cases: {2 * args.slow_rounds}, ours/peer/peer/ours)"
    )
    print("| case | camscope s | peer s | plain fwd+bwd s | camscope / peer | camscope / plain | max abs diff | load |")
    print("|---|---|---|---|---|---|---|---|")
    for case in cases:
        result = measure(case, args.repeats, args.slow_rounds)
        m = result["medians"]
        print(
            f"| {CASES[case][0]} | {m['ours']:.3f} | {m['peer']:.3f} | {m['plain']:.3f} | "
            f"{m['ours'] / m['peer']:.2f} | {m['ours'] / m['plain']:.2f} | {result['diff']:.1e} | "
            f"{result['load']:.1f} |",
            flush=True,
        )
        if CASES[case][2]:
            for name in ("ours", "peer"):
                walls = ", ".join(f"{t:.1f}" for t in result["times"][name])
                cpus = ", ".join(f"{t:.1f}" for t in result["cpu"][name])
                print(f"  {name} calls: wall {walls} s; process CPU {cpus} s")
            ours_cpu, peer_cpu = (statistics.median(result["cpu"][name]) for name in ("ours", "peer"))
            print(f"  median CPU camscope / peer: {ours_cpu / peer_cpu:.2f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the run: {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
