"""Time camscope's CAM methods against pytorch-grad-cam 1.5.7 in the same run.

Each (model, method) runs in its own subprocess, in which camscope, pytorch-grad-cam and one plain
forward+backward pass of the model are timed interleaved (medians), so load from elsewhere hits all
three alike: read the ratios. Score-CAM and Ablation-CAM (minutes per call for the peer) are timed once.
Random weights (seeded) are fine for timing; both get the same model, input and target, and the script
prints the max |difference| of their maps and the load average next to the times.

    python -m benchmarks.bench_methods                 # ResNet50 + ViT-B/16, all methods (~30 min on 2 cores)
    python -m benchmarks.bench_methods --quick         # gradient methods + Ablation-CAM
    python -m benchmarks.bench_methods --models resnet50 --methods gradcam,ablationcam
    python -m benchmarks.bench_methods --token-methods  # attention, rollout, gradrollout, legrad, RELAX vs plain

``--write-readme`` writes the table into README.md between the ``bench:methods`` (or ``bench:token-methods``)
markers, its caption naming the command that produced it. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time
from typing import Any

from benchmarks.readme_tables import invocation, write_readme_table

GRADIENT_METHODS = ["gradcam", "hirescam", "gradcamelementwise", "gradcam++", "xgradcam", "layercam", "eigengradcam"]
SLOW_METHODS = ["scorecam", "ablationcam"]
ALL_METHODS = [*GRADIENT_METHODS, "eigencam", "kpcacam", "fem", "shapleycam", "fullgrad", *SLOW_METHODS]
#: Token-native methods (no peer on timm models): timed against the model's own plain passes instead.
TOKEN_METHODS = ["attention", "rollout", "gradrollout", "legrad", "relax"]

PEER_CLASS = {
    "gradcam": "GradCAM",
    "hirescam": "HiResCAM",
    "gradcamelementwise": "GradCAMElementWise",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
    "fullgrad": "FullGrad",
    "scorecam": "ScoreCAM",
    "ablationcam": "AblationCAM",
    "kpcacam": "KPCA_CAM",
    "fem": "FEM",
    "shapleycam": "ShapleyCAM",
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


def _callables(model_name: str, method: str) -> tuple[Any, Any, Any, Any]:
    """camscope's call, the peer's call and one plain forward+backward pass, on one model and input."""
    import numpy as np

    import camscope

    model, layers, reshape, x = build(model_name)
    target = 1

    def baseline() -> None:
        xx = x.clone().requires_grad_(True)
        model(xx)[0, target].backward()
        model.zero_grad(set_to_none=True)

    cls = camscope.get_method(method)
    kwargs: dict[str, Any] = {"progress": False} if method in SLOW_METHODS else {}
    ours_cam = cls(model) if method == "fullgrad" else cls(model, layers, reshape, **kwargs)

    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from camscope.testing.peers import ZeroAblationLayerVit

    if method.startswith("eigen"):  # compare with the sign convention camscope uses (see the parity tests)
        from pytorch_grad_cam import base_cam, eigen_cam, eigen_grad_cam
        from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction

        for module in (base_cam, eigen_cam, eigen_grad_cam):
            module.get_2d_projection = get_2d_projection_with_sign_correction
    peer_cls = getattr(pgc, PEER_CLASS[method])
    if method == "fullgrad":
        peer_cam = peer_cls(model, [])
    elif method == "ablationcam" and reshape is not None:  # the zero ablation camscope documents, so maps agree
        peer_cam = peer_cls(model, layers, reshape, ablation_layer=ZeroAblationLayerVit())
    else:
        peer_cam = peer_cls(model, layers, reshape)

    def ours() -> np.ndarray:
        return ours_cam(x, [target])

    def peer() -> np.ndarray:
        return peer_cam(x, [ClassifierOutputTarget(target)])

    return model, ours, peer, baseline


def measure(model_name: str, method: str, repeats: int, queue: Any) -> None:
    """Runs in a subprocess. camscope, the peer and the plain pass are timed *interleaved* (ours, peer,
    plain, ours, …), so a burst of load from elsewhere hits all three alike; the ratios are what to read.
    Peak RSS: after camscope's first call (ours alone), then after the peer's (the process peak)."""
    import os

    import torch

    torch.manual_seed(0)
    _, ours, peer, baseline = _callables(model_name, method)
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # noqa: E731
    times: dict[str, list[float]] = {"ours": [], "peer": [], "plain": []}

    def timed_call(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        out = fn()
        times[name].append(time.perf_counter() - start)
        return out

    slow = method in SLOW_METHODS
    ours_map = timed_call("ours", ours) if slow else ours()  # slow methods: the first call is the measurement
    ours_mb = rss()
    peer_map = timed_call("peer", peer) if slow else peer()
    peer_mb = rss()
    timed_call("plain", baseline) if slow else baseline()
    for _ in range(0 if slow else repeats):
        timed_call("ours", ours)
        timed_call("peer", peer)
        timed_call("plain", baseline)
    medians = {k: statistics.median(v) for k, v in times.items()}
    queue.put((medians, ours_mb, peer_mb, ours_map, peer_map, os.getloadavg()[0]))


def timed(model_name: str, method: str, repeats: int) -> tuple[Any, ...]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=measure, args=(model_name, method, repeats, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def measure_token(method: str, repeats: int, relax_masks: int, queue: Any) -> None:
    """Runs in a subprocess: one token-native method against the plain passes it must be compared with —
    a forward pass (timm's default fused attention, inference mode) for the class-agnostic ones, a
    forward+backward for the gradient ones, and for RELAX the same masked forward passes without the
    bookkeeping (its floor). Interleaved, medians."""
    import os

    import torch

    import camscope

    model, _, _, x = build("vit_b16")
    target = 1

    def forward() -> None:
        with torch.inference_mode():
            model(x)

    def forward_backward() -> None:
        xx = x.clone().requires_grad_(True)
        model(xx)[0, target].backward()
        model.zero_grad(set_to_none=True)

    if method == "relax":
        cam = camscope.RELAX(model, num_masks=relax_masks, batch_size=50, progress=False)
        masks = torch.rand(relax_masks, 1, 224, 224, generator=torch.Generator().manual_seed(0))

        def floor() -> None:
            with torch.inference_mode():
                for start in range(0, relax_masks, 50):
                    model(x * masks[start : start + 50])

        plain, plain_name, repeats = floor, "its masked forwards", 1
    else:
        cam = camscope.get_method(method)(model)
        plain = forward_backward if cam.uses_gradients else forward
        plain_name = "fwd+bwd" if cam.uses_gradients else "forward"
    times: dict[str, list[float]] = {"ours": [], "plain": []}
    cam(x, [target]), plain()  # warm-up
    for _ in range(repeats):
        for name, fn in (("ours", lambda: cam(x, [target])), ("plain", plain)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    medians = {k: statistics.median(v) for k, v in times.items()}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((medians, plain_name, rss, os.getloadavg()[0]))


def token_table(methods: list[str], repeats: int, relax_masks: int) -> list[str]:
    lines = [
        "| model | method | camscope s | plain pass | plain s | camscope / plain | peak RSS MB | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    ctx = mp.get_context("spawn")
    for method in methods:
        queue = ctx.Queue()
        proc = ctx.Process(target=measure_token, args=(method, repeats, relax_masks, queue))
        proc.start()
        med, plain_name, rss, load = queue.get()
        proc.join()
        label = f"relax ({relax_masks} masks)" if method == "relax" else method
        lines.append(
            f"| vit_b16 | {label} | {med['ours']:.3f} | {plain_name} | {med['plain']:.3f} | "
            f"{med['ours'] / med['plain']:.2f} | {rss:.0f} | {load:.1f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet50,vit_b16")
    parser.add_argument("--methods", default=",".join(ALL_METHODS))
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per fast measurement")

    parser.add_argument("--quick", action="store_true", help="gradient methods + Ablation-CAM only")
    parser.add_argument("--token-methods", action="store_true", help="only the token-native methods (ViT-B/16)")
    parser.add_argument("--relax-masks", type=int, default=200, help="RELAX masks in the token table (paper: 3000)")
    parser.add_argument("--write-readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()
    import torch

    command = invocation("benchmarks.bench_methods")
    if args.token_methods:
        caption = (
            f"`{command}`: ViT-B/16, random weights, one 224×224 image, {torch.get_num_threads()} threads; each "
            "method against the plain pass it must be compared with, interleaved in one process, medians; "
            "load = load average during the measurement"
        )
        lines = token_table(TOKEN_METHODS, args.repeats, args.relax_masks)
        if args.write_readme:
            write_readme_table("token-methods", "\n".join([caption, "", *lines]))
        return
    methods = [*GRADIENT_METHODS, "ablationcam"] if args.quick else args.methods.split(",")

    import numpy as np

    lines = [
        "| model | method | camscope s | pytorch-grad-cam s | speed-up | camscope / plain fwd+bwd | max abs Δ map "
        "| peak RSS MB (ours / with peer) | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for model_name in args.models.split(","):
        for method in methods:
            if method == "fullgrad" and model_name != "resnet50":
                continue
            if method == "shapleycam" and model_name != "resnet50":
                continue  # pytorch-grad-cam's ShapleyCAM crashes on ViTs (see tests/methods/test_parity_newer.py)
            med, ours_mb, peer_mb, ours_map, peer_map, load = timed(model_name, method, args.repeats)
            diff = float(np.abs(ours_map - peer_map).max())
            lines.append(
                f"| {model_name} | {method} | {med['ours']:.3f} | {med['peer']:.3f} | "
                f"{med['peer'] / med['ours']:.1f}× | {med['ours'] / med['plain']:.2f} | {diff:.1e} | "
                f"{ours_mb:.0f} / {peer_mb:.0f} | {load:.1f} |"
            )
            print(lines[-1], flush=True)
    caption = (
        f"`{command}`: models {args.models}, methods {', '.join(methods)}; random weights, one 224×224 image, "
        f"target layer `layer4[-1]` / `blocks[-1].norm1`, {torch.get_num_threads()} threads; camscope, "
        "pytorch-grad-cam 1.5.7 and one plain forward+backward pass timed interleaved in one process, medians "
        f"of {args.repeats} (Score-/Ablation-CAM: one call each); the peer's ViT Ablation-CAM zeroes the ablated "
        "channel like camscope (camscope/testing/peers.py); load = load average during the measurement"
    )
    if args.write_readme:
        write_readme_table("methods", "\n".join([caption, "", *lines]))


if __name__ == "__main__":
    main()
