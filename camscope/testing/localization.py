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
    """Maps (N, H, W) of ``method`` explaining each image's true class at the spec's default layer (a
    method that picks its own layers, such as the attention maps, reads them), through the one pipeline."""
    from camscope.models import get_spec
    from camscope.pipeline import build_cams, cam_layers, method_classes, run_methods

    spec = getattr(model, "camscope_spec", None) or get_spec(model)
    classes, _ = method_classes(method)
    x = to_input(images, spec.mean, spec.std)
    layers, reshape = cam_layers(model, spec, classes, None, None, (int(x.shape[-2]), int(x.shape[-1])))
    cams = build_cams(model, classes, layers, reshape, {})
    targets = [ClassifierOutputTarget(int(c)) for c in labels]
    return run_methods(cams, x, targets, batch_size=batch_size)[0].maps


def pointing_accuracy(model: nn.Module, method: str, data: SyntheticBatch, tolerance: float = TOLERANCE) -> float:
    """Pointing-game hit rate (%) of ``method`` against the true masks of ``data``."""
    maps = cam_maps(model, method, data.images, data.labels)
    return pointing_game(maps, data.masks, tolerance=tolerance).mean * 100
