"""Small random-weight timm token models for the attention tests (one per attention layout).

Weights are redrawn with a larger spread than timm's initialisation (and CaiT/XCiT layer scales set to
1), so attention is peaked and the maps are far from constant: a comparison on a near-uniform map
would pass whatever the method computes. They run in float64 by default, so that a comparison with an
oracle at 1e-5 measures the method, not float32 rounding in the model's own softmax (peaked attention
amplifies it to ~2e-5 in the smallest entries).
"""

from __future__ import annotations

import timm
import torch
from torch import nn

SMALL = {"img_size": 32, "embed_dim": 48, "num_heads": 3, "num_classes": 10}
TOKEN_MODELS = {
    "vit": ("vit_tiny_patch16_224", {"patch_size": 8, "depth": 2}),
    "deit_distilled": ("deit_tiny_distilled_patch16_224", {"patch_size": 8, "depth": 2}),
    "cait": ("cait_xxs24_224", {"patch_size": 8, "depth": 2, "depth_token_only": 2}),
    "xcit": ("xcit_nano_12_p8_224", {"depth": 2, "cls_attn_layers": 2}),
}


def build_token_model(key: str, seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    arch, kwargs = TOKEN_MODELS[key]
    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False, **SMALL, **kwargs).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("gamma_1", "gamma_2", "gamma1", "gamma2")):
                param.fill_(1.0)
            elif param.ndim >= 2 or "token" in name:
                param.copy_(torch.randn(param.shape, generator=g) * 0.3)
    return model.to(dtype)


def token_input(seed: int = 3, n: int = 2, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)).to(dtype)
