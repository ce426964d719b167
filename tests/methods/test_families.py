"""Every method on every architecture family the zoo covers (tiny random-weight configs): valid maps,
and Ablation-CAM's split network equal to full forward passes wherever it is used."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import camscope
from camscope.models import infer_cam_layers

FAMILIES = {
    "vit": ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}),
    "deit_distilled": (
        "deit_tiny_distilled_patch16_224",
        {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3},
    ),
    "swin": (
        "swin_tiny_patch4_window7_224",
        {"img_size": 56, "patch_size": 4, "embed_dim": 24, "depths": (1, 1), "num_heads": (1, 2), "window_size": 7},
    ),
    "xcit": ("xcit_nano_12_p16_224", {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 2}),
    "cait": (
        "cait_xxs24_224",
        {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 2, "depth_token_only": 1},
    ),
    "convnext": ("convnext_atto", {"dims": (8, 16, 24, 32), "depths": (1, 1, 1, 1)}),
}
METHODS = [
    "gradcam",
    "gradcam++",
    "xgradcam",
    "layercam",
    "hirescam",
    "eigencam",
    "eigengradcam",
    "scorecam",
    "ablationcam",
    "randomcam",
]


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    arch, kwargs = FAMILIES[request.param]
    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False, num_classes=10, **kwargs).eval()
    size = kwargs.get("img_size", 64)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    layers, reshape = infer_cam_layers(model, (size, size))
    return request.param, model, layers, reshape, x


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_method_gives_a_valid_map(family, method: str) -> None:
    _, model, layers, reshape, x = family
    maps = camscope.get_method(method)(model, layers, reshape)(x, [1, 2])
    assert maps.shape == (2, *x.shape[-2:]) and maps.dtype == np.float32
    assert not np.isnan(maps).any() and maps.min() >= 0 and maps.max() <= 1


@pytest.mark.slow
def test_ablation_split_matches_full_forward(family, capfd) -> None:
    """Swin's traced graph bakes in integers computed from the batch size (``B, H, W, C = x.shape``):
    they are found and rescaled for ablation batches, for a batch of one image too."""
    _, model, layers, reshape, x = family
    for batch in (x, x[1:]):
        fast = camscope.AblationCAM(model, layers, reshape)
        weights_fast = _weights(fast, batch)
        slow = camscope.AblationCAM(model, layers, reshape, use_tail=False)
        np.testing.assert_allclose(weights_fast, _weights(slow, batch), rtol=1e-3, atol=1e-5)
        assert fast.last_strategy in ("tail", "closed-form", "cls-path")
    assert "Traceback" not in capfd.readouterr().err


def _weights(cam: camscope.AblationCAM, x: torch.Tensor) -> np.ndarray:
    state = cam.forward_pass(x, [1, 2][: x.shape[0]])
    return cam.channel_weights(state, state.layers[0]).numpy()
