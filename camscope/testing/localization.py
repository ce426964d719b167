"""Maps of the true class on generated scenes, and the pointing game against their true masks.

The settings are those of the published mini-zoo figures (``benchmarks/mini_zoo_report.py``), so the
test of a method's localization checks the figure the README shows.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from camscope.core.targets import ClassifierOutputTarget
from camscope.data.synthetic import DEFAULT_SIZE, SyntheticBatch, to_input
from camscope.metrics.localization import pointing_game, scaled_tolerance

LOCALIZATION_SEED = 11  # fresh images, disjoint from the training, probe and test seeds
LOCALIZATION_N = 300
TOLERANCE = scaled_tolerance(DEFAULT_SIZE)  # ≈ 4.3 px on the 64×64 input (a CAM cell is 8 px wide)


def cam_maps(
    model: nn.Module, method: str, images: np.ndarray, labels: np.ndarray, batch_size: int = 100
) -> np.ndarray:
    """Maps (N, H, W) of ``method`` explaining each image's true class at the spec's default layer
    (a method that takes no layers, such as the attention maps, reads its own)."""
    from camscope.methods import get_method
    from camscope.models import get_spec

    spec = getattr(model, "camscope_spec", None) or get_spec(model)
    method_cls = get_method(method)
    if method_cls.takes_layers:
        layers, reshape = spec.cam_layers(model)
        cam = method_cls(model, target_layers=layers, reshape_transform=reshape)
    else:
        cam = method_cls(model)  # type: ignore[call-arg]  # a method without layers takes none
    x = to_input(images, spec.mean, spec.std)
    out = []
    for start in range(0, len(x), batch_size):
        targets = [ClassifierOutputTarget(int(c)) for c in labels[start : start + batch_size]]
        out.append(cam(x[start : start + batch_size], targets=targets))
    return np.concatenate(out)


def pointing_accuracy(model: nn.Module, method: str, data: SyntheticBatch, tolerance: float = TOLERANCE) -> float:
    """Pointing-game hit rate (%) of ``method`` against the true masks of ``data``."""
    maps = cam_maps(model, method, data.images, data.labels)
    return pointing_game(maps, data.masks, tolerance=tolerance).mean * 100
