"""``pytorch_grad_cam.utils.reshape_transforms`` → camscope's reshape transforms.

camscope infers the transform of a zoo, timm or torchvision model from the layer's real output
(:func:`camscope.models.reshape.reshape_for_shape`), so these fixed-size versions are rarely needed.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from camscope.models.reshape import TokensToGrid


def vit_reshape_transform(tensor: torch.Tensor, height: int = 14, width: int = 14) -> torch.Tensor:
    """ViT tokens (B, 1 + h·w, C) → (B, C, h, w), the class token dropped (:class:`TokensToGrid`)."""
    return TokensToGrid(1, (height, width))(tensor)


def swinT_reshape_transform(tensor: torch.Tensor, height: int = 7, width: int = 7) -> torch.Tensor:
    """Swin's (B, h·w, C) tokens or channels-last (B, h, w, C) map → (B, C, h, w)."""
    return TokensToGrid(0, (height, width))(tensor.reshape(tensor.shape[0], height * width, tensor.shape[-1]))


def fasterrcnn_reshape_transform(x: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """An FPN's levels (a dict ending in ``"pool"``) → one map: each level's absolute values resized
    bilinearly to the ``pool`` level's size, concatenated along channels."""
    size = x["pool"].shape[-2:]
    levels = [F.interpolate(value.abs(), size, mode="bilinear") for value in x.values()]
    return torch.cat(levels, dim=1)
