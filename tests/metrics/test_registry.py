"""The metric registry, and every model-based metric on a CNN and a token model."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

from camscope.core.errors import UnknownNameError
from camscope.metrics import METRICS, get_metric


def test_names_from_cli_and_config():
    for name in ("deletion", "insertion", "avgdrop", "road", "pointing", "energy_pointing"):
        assert get_metric(name).name == name
    assert get_metric("Energy-Pointing") is METRICS["energy_pointing"]
    with pytest.raises(UnknownNameError, match="deletion"):
        get_metric("faithfulness")


@pytest.mark.parametrize("arch", ["cnn", "vit"])
def test_model_metrics_run_batched(arch, cnn):
    if arch == "vit":
        model = timm.create_model(
            "vit_tiny_patch16_224", pretrained=False, num_classes=5, img_size=32, patch_size=8, depth=1
        ).eval()
    else:
        model = cnn
    torch.manual_seed(0)
    x, maps = torch.randn(2, 3, 32, 32), np.random.rand(2, 32, 32).astype(np.float32)
    kwargs = {
        "deletion": {"step": 128},
        "insertion": {"step": 128},
        "road": {"percentages": [30, 70]},
        "smooth_mprt": {"nr_samples": 2, "skip_layers": True},
        "mprt": {"skip_layers": True},
        "faithfulness_correlation": {"nr_runs": 5, "subset_size": 16},
        "monotonicity_correlation": {"nr_samples": 2, "features_in_step": 256},
        "pixel_flipping": {"features_in_step": 256},
        "region_perturbation": {"regions_evaluation": 4},
        "selectivity": {"patch_size": 16},
        "irof": {"segmentation_method": "felzenszwalb"},
        "infidelity": {"perturb_patch_sizes": [16]},
        "max_sensitivity": {"nr_samples": 2},
        "avg_sensitivity": {"nr_samples": 2},
        "local_lipschitz_estimate": {"nr_samples": 2},
    }
    for name, metric in METRICS.items():
        if metric.needs_ground_truth:
            continue
        shared = metric.accepted(batch_size=3, explain_func="gradcam")
        summary = metric(model, x, maps, None, **shared, **kwargs.get(name, {})).summary()
        assert summary and all(v.shape == (2,) and np.isfinite(v).all() for v in summary.values()), name
