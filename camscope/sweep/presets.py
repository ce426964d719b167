"""The demo preset: the nine mini models × the main methods × generated images with ground truth.

Sized to finish in about three minutes on two CPU cores with all nine models: generated images at the
minis' native 64 px, label targets (the generator knows
the true class), deletion / insertion in 8 steps of eight rows, and the localization metrics that the
generator's exact object masks make possible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camscope.metrics.localization import scaled_tolerance
from camscope.models.mini import MINI_MODELS

# Score-CAM and Ablation-CAM cost a forward pass per channel (~30× Grad-CAM), too slow for the demo's
# budget; XGrad-CAM equals Grad-CAM on ReLU CNNs. Deletion/insertion dominate the cost
# (one forward pass per step and image), hence 8 steps.
DEMO_METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "layercam", "eigencam")
DEMO_IMAGES = 12
DEMO_SIZE = 64


def available_mini_models(random_weights: bool = False) -> tuple[list[str], dict[str, str]]:
    """(mini models that can run, {missing model: why}) — unregistered, or without weights."""
    from camscope.core.errors import WeightsError
    from camscope.models import get_spec, list_models, resolve_weights

    registered = set(list_models())
    ready, missing = [], {}
    for name in MINI_MODELS:
        if name not in registered:
            missing[name] = "not registered in the zoo"
            continue
        if not random_weights:
            try:
                resolve_weights(get_spec(name))
            except WeightsError:
                missing[name] = "weights file not found (camscope zoo shows where it is looked for)"
                continue
        ready.append(name)
    return ready, missing


def demo_config_dict(
    output: str | Path, models: list[str], random_weights: bool = False, device: str = "cpu"
) -> dict[str, Any]:
    """The demo sweep as a config dict (``examples/mini_zoo.toml`` spells it out in TOML)."""
    return {
        "output": str(output),
        "device": device,
        "models": [{"name": m, "random_weights": True} if random_weights else m for m in models],
        "methods": list(DEMO_METHODS),
        "targets": "label",
        "batch_size": 16,
        "metric_batch_size": 128,
        "shard_size": 8,
        "report_images": 3,
        "images": {"source": f"synthetic:{DEMO_IMAGES}", "seed": 2024, "size": DEMO_SIZE},
        "metrics": {
            "deletion": {"step": 512},
            "insertion": {"step": 512},
            "avgdrop": {},
            "pointing": {"tolerance": round(scaled_tolerance(DEMO_SIZE), 2)},  # TorchRay's 15 px at 224 px
            "relevance_mass": {},
        },
    }
