"""Time camscope's CAM methods against pytorch-grad-cam 1.5.7 in the same run.

Each (model, method, implementation) runs in its own subprocess, so the peak RSS printed is that of the
measurement alone. Random weights (seeded) are fine for timing; both implementations get the same model,
input and target, and the script prints the max |difference| of their maps next to the times.

    python benchmarks/bench_methods.py                 # ResNet50 + ViT-B/16, all methods (~30 min on 2 cores)
    python benchmarks/bench_methods.py --quick         # gradient methods + Ablation-CAM, 1 repeat for slow peers
    python benchmarks/bench_methods.py --models resnet50 --methods gradcam,ablationcam

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time
from typing import Any

GRADIENT_METHODS = ["gradcam", "hirescam", "gradcamelementwise", "gradcam++", "xgradcam", "layercam", "eigengradcam"]
SLOW_METHODS = ["scorecam", "ablationcam"]
ALL_METHODS = [*GRADIENT_METHODS, "eigencam", "fullgrad", *SLOW_METHODS]

PEER_CLASS = {
    "gradcam": "GradCAM", "hirescam": "HiResCAM", "gradcamelementwise": "GradCAMElementWise",
    "gradcam++": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "layercam": "LayerCAM", "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM", "fullgrad": "FullGrad", "scorecam": "ScoreCAM", "ablationcam": "AblationCAM",
}


def build(model_name: str):
    """Model, target layers, reshape transform and a 224×224 input, all seeded."""
    import timm
    import torch
    import torchvision

    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    if model_name == "resnet50":
        model = torchvision.models.resnet50().eval()
        return model, [model.layer4[-1]], None, x

    model = timm.create_model("vit_base_patch16_224", pretrained=False).eval()

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        grid = tokens[:, 1:, :].reshape(tokens.shape[0], 14, 14, tokens.shape[-1])
        return grid.permute(0, 3, 1, 2)

    return model, [model.blocks[-1].norm1], reshape, x


def measure(model_name: str, method: str, impl: str, repeats: int, queue: Any) -> None:
    """Runs in a subprocess: warm up once, time ``repeats`` calls, report median seconds, peak RSS, map."""
    import numpy as np
    import torch

    model, layers, reshape, x = build(model_name)
    target = 1
    if impl == "baseline":
        def run() -> np.ndarray:
            xx = x.clone().requires_grad_(True)
            out = model(xx)
            out[0, target].backward()
            model.zero_grad(set_to_none=True)
            return np.zeros((1, 224, 224), np.float32)
    elif impl == "camscope":
        import camscope

        cls = camscope.get_method(method)
        kwargs: dict[str, Any] = {"progress": False} if method in SLOW_METHODS else {}
        cam = cls(model, layers, reshape, **kwargs) if method != "fullgrad" else cls(model)

        def run() -> np.ndarray:
            return cam(x, [target])
    else:
        import pytorch_grad_cam as pgc
        from pytorch_grad_cam.ablation_layer import AblationLayerVit
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        if method.startswith("eigen"):  # compare with the sign convention camscope uses (see the parity tests)
            from pytorch_grad_cam import base_cam, eigen_cam, eigen_grad_cam
            from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction

            for module in (base_cam, eigen_cam, eigen_grad_cam):
                module.get_2d_projection = get_2d_projection_with_sign_correction
        cls = getattr(pgc, PEER_CLASS[method])
        if method == "fullgrad":
            cam = cls(model, [])
        elif method == "ablationcam" and reshape is not None:
            cam = cls(model, layers, reshape, ablation_layer=AblationLayerVit())
        else:
            cam = cls(model, layers, reshape)

        def run() -> np.ndarray:
            return cam(x, [ClassifierOutputTarget(target)])

    if method in SLOW_METHODS:  # minutes per call: warm up on one plain forward pass, time the call itself
        with torch.inference_mode():
            model(x)
        times = []
        result = None
        for _ in range(repeats):
            start = time.perf_counter()
            result = run()
            times.append(time.perf_counter() - start)
    else:
        result = run()  # warm-up (and the map)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((statistics.median(times), peak_mb, result))


def timed(model_name: str, method: str, impl: str, repeats: int) -> tuple[float, float, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=measure, args=(model_name, method, impl, repeats, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet50,vit_b16")
    parser.add_argument("--methods", default=",".join(ALL_METHODS))
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per fast measurement")
    parser.add_argument("--slow-repeats", type=int, default=1, help="timed calls of Score-/Ablation-CAM (minutes each)")
    parser.add_argument("--quick", action="store_true", help="gradient methods + Ablation-CAM only")
    args = parser.parse_args()
    methods = [*GRADIENT_METHODS, "ablationcam"] if args.quick else args.methods.split(",")

    import numpy as np

    print("| model | method | camscope s | pytorch-grad-cam s | speed-up | camscope / fwd+bwd | max abs Δ map "
          "| peak RSS MB (ours / peer) |")
    print("|---|---|---|---|---|---|---|---|")
    for model_name in args.models.split(","):
        base_s, base_mb, _ = timed(model_name, "", "baseline", args.repeats)
        print(f"| {model_name} | plain forward+backward | {base_s:.3f} | | | 1.00 | | {base_mb:.0f} |", flush=True)
        for method in methods:
            if method == "fullgrad" and model_name != "resnet50":
                continue
            repeats = args.slow_repeats if method in SLOW_METHODS else args.repeats
            ours_s, ours_mb, ours_map = timed(model_name, method, "camscope", repeats)
            peer_s, peer_mb, peer_map = timed(model_name, method, "peer", repeats)
            diff = float(np.abs(ours_map - peer_map).max())
            print(
                f"| {model_name} | {method} | {ours_s:.3f} | {peer_s:.3f} | {peer_s / ours_s:.1f}× | "
                f"{ours_s / base_s:.2f} | {diff:.1e} | {ours_mb:.0f} / {peer_mb:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
