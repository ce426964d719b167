"""FullGrad (Srinivas & Fleuret, NeurIPS 2019): input-gradient ⊙ input plus, for every layer with a bias,
|bias ⊙ gradient at the layer's output|, each channel min-max scaled, upsampled and summed.

Bilinear upsampling is linear, so the channels of a layer are summed *before* upsampling; the result
equals pytorch-grad-cam's (which upsamples every channel of every layer separately) at a fraction of
the cost.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from camscope.core.capture import ReshapeTransform
from camscope.methods.base import (
    BaseCAM,
    CamState,
    LayerState,
    principal_projection,
    resize_maps,
    scale_per_image,
)
from camscope.methods.registry import register_method


def bias_layers(model: nn.Module) -> list[nn.Module]:
    """Every Conv2d / BatchNorm2d with a bias (the layers FullGrad sums over)."""
    return [
        m
        for m in model.modules()
        if type(m) in (nn.Conv2d, nn.BatchNorm2d)
        and m.bias is not None
        and (not isinstance(m, nn.BatchNorm2d) or m.running_mean is not None)
    ]


def effective_bias(layer: nn.Module) -> torch.Tensor:
    """The bias a layer adds in eval mode; for batch norm, β − μ·γ/√(σ² + ε)."""
    if isinstance(layer, nn.BatchNorm2d):
        assert layer.running_mean is not None and layer.running_var is not None
        bias: torch.Tensor = layer.bias - layer.running_mean * layer.weight / torch.sqrt(layer.running_var + layer.eps)
        return bias
    assert isinstance(layer.bias, torch.Tensor)
    return layer.bias


def _scale_channels(maps: torch.Tensor) -> torch.Tensor:
    """Min-max scale every (image, channel) map of (N, C, h, w)."""
    n, c = maps.shape[:2]
    return scale_per_image(maps.reshape(n * c, *maps.shape[2:])).reshape(maps.shape)


@register_method("fullgrad")
class FullGrad(BaseCAM):
    """FullGrad. ``target_layers`` is ignored (as in pytorch-grad-cam): all bias layers are used."""

    needs_input_gradient = True
    takes_layers = False

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str | None = None,
        reshape_transform: ReshapeTransform | None = None,
    ) -> None:
        super().__init__(model, bias_layers(model), None)

    def layer_map(self, state: CamState, layer: LayerState, eigen_smooth: bool) -> torch.Tensor:
        assert layer.grads is not None
        bias = effective_bias(layer.layer).detach().to(layer.grads)
        return _scale_channels((bias[None, :, None, None] * layer.grads).abs()).sum(dim=1)

    def combine_layers(self, state: CamState, layer_maps: list[torch.Tensor]) -> torch.Tensor:
        assert state.input_grad is not None
        input_term = _scale_channels((state.input_grad * state.input).abs()).sum(dim=1)
        total = input_term + sum(resize_maps(m, state.size) for m in layer_maps)
        return scale_per_image(total)

    def maps_from_state(self, state: CamState, eigen_smooth: bool) -> torch.Tensor:
        if not eigen_smooth:
            return super().maps_from_state(state, eigen_smooth)
        # pytorch-grad-cam's eigen_smooth for FullGrad: every scaled term at 1/8 resolution, first
        # principal component across terms, back to full size.
        assert state.input_grad is not None
        h, w = state.size
        terms = [_scale_channels((state.input_grad * state.input).abs())]
        for layer in state.layers:
            assert layer.grads is not None
            bias = effective_bias(layer.layer).detach().to(layer.grads)
            per_channel = _scale_channels((bias[None, :, None, None] * layer.grads).abs())
            scaled = resize_maps(per_channel.flatten(0, 1), (h, w))
            terms.append(scaled.view(state.input.shape[0], -1, h, w).sum(dim=1, keepdim=True))
        stack = torch.cat(terms, dim=1)
        small = resize_maps(_scale_channels(stack).flatten(0, 1), (h // 8, w // 8))
        small = small.view(*stack.shape[:2], h // 8, w // 8)
        projection = principal_projection(small)
        return scale_per_image(resize_maps(scale_per_image(projection), (h, w)))
