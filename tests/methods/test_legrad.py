"""LeGrad against torchcam 0.5.0's LeGrad, which runs on torchvision's ViT only.

The torchvision ViT's weights are copied into the equivalent timm VisionTransformer (same pre-norm
blocks, LayerNorm eps 1e-6, GELU MLP, class token, learned position embedding); the two models give the
same logits, and camscope's LeGrad on the timm copy gives torchcam's map on the torchvision original.
"""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from torchcam.methods import LeGrad as TorchcamLeGrad
from torchvision.models import VisionTransformer

import camscope
from camscope.core.errors import LayerError
from tests.methods.token_models import build_token_model

TOL = 1e-4
DEPTH, DIM, HEADS = 3, 48, 3


@pytest.fixture(scope="module")
def twins() -> tuple[VisionTransformer, torch.nn.Module]:
    torch.manual_seed(0)
    tv = VisionTransformer(32, 8, DEPTH, HEADS, DIM, 96, num_classes=10).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in tv.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    tm = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=DIM, depth=DEPTH,
        num_heads=HEADS, mlp_ratio=2.0, num_classes=10,
    ).eval()  # fmt: skip
    state = {
        "cls_token": tv.class_token,
        "pos_embed": tv.encoder.pos_embedding,
        "patch_embed.proj.weight": tv.conv_proj.weight,
        "patch_embed.proj.bias": tv.conv_proj.bias,
        "norm.weight": tv.encoder.ln.weight,
        "norm.bias": tv.encoder.ln.bias,
        "head.weight": tv.heads.head.weight,
        "head.bias": tv.heads.head.bias,
    }
    for i, layer in enumerate(tv.encoder.layers):
        b = f"blocks.{i}."
        state |= {
            b + "norm1.weight": layer.ln_1.weight,
            b + "norm1.bias": layer.ln_1.bias,
            b + "attn.qkv.weight": layer.self_attention.in_proj_weight,
            b + "attn.qkv.bias": layer.self_attention.in_proj_bias,
            b + "attn.proj.weight": layer.self_attention.out_proj.weight,
            b + "attn.proj.bias": layer.self_attention.out_proj.bias,
            b + "norm2.weight": layer.ln_2.weight,
            b + "norm2.bias": layer.ln_2.bias,
            b + "mlp.fc1.weight": layer.mlp[0].weight,
            b + "mlp.fc1.bias": layer.mlp[0].bias,
            b + "mlp.fc2.weight": layer.mlp[3].weight,
            b + "mlp.fc2.bias": layer.mlp[3].bias,
        }
    tm.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=True)
    return tv, tm


def cam_pipeline(low: torch.Tensor, size: int = 32) -> np.ndarray:
    """The CAMs' finishing steps on a low-resolution map: ReLU, min-max, bilinear (half-pixel), min-max."""
    m = low.clamp(min=0).flatten(1)
    m = (m - m.min(1, keepdim=True).values) / (m.max(1, keepdim=True).values - m.min(1, keepdim=True).values + 1e-7)
    m = F.interpolate(m.view(low.shape)[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    m = m.flatten(1) - m.flatten(1).min(1, keepdim=True).values
    return (m / (m.max(1, keepdim=True).values + 1e-7)).view(-1, size, size).numpy()


@pytest.mark.parametrize("blocks", [None, [1, 2]])
def test_legrad_matches_torchcam(twins, blocks) -> None:
    tv, tm = twins
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(tm(x), tv(x), atol=1e-4, rtol=1e-4)
    classes = [2, 7]
    chosen = list(range(DEPTH)) if blocks is None else blocks
    with TorchcamLeGrad(tv, [tv.encoder.layers[i] for i in chosen]) as extractor:
        tv(x)
        ref_low = extractor(classes)[0].detach()
    targets = None if blocks is None else [tm.blocks[i] for i in chosen]
    method = camscope.LeGrad(tm, targets)
    _, low = method.patch_maps(x, classes)
    low = low.flatten(1)
    ours_low = (low - low.min(1, keepdim=True).values) / (
        low.max(1, keepdim=True).values - low.min(1, keepdim=True).values
    )
    assert (ours_low.view_as(ref_low) - ref_low).abs().max() <= TOL
    ours = camscope.LeGrad(tm, targets)(x, classes)
    assert np.abs(ours - cam_pipeline(ref_low)).max() <= TOL
    assert ours.max() > 0.5 and not np.allclose(ours[0], ours[1], atol=1e-2)


def test_legrad_on_distilled_deit_and_refuses_class_attention() -> None:
    deit = build_token_model("deit_distilled")
    maps = camscope.LeGrad(deit)(torch.randn(2, 3, 32, 32, dtype=torch.float64), [1, 2])
    assert maps.shape == (2, 32, 32) and maps.max() == pytest.approx(1, abs=1e-6)
    with pytest.raises(LayerError, match="class-attention"):
        camscope.LeGrad(build_token_model("cait"))
