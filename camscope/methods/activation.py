"""Methods that need no gradients: Eigen-CAM and the RandomCAM baseline."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from camscope.capture import ReshapeTransform
from camscope.methods.base import BaseCAM, CamState, LayerState, principal_projection
from camscope.methods.registry import register_method


@register_method("eigencam")
class EigenCAM(BaseCAM):
    """Eigen-CAM (Muhammad & Yeasin, IJCNN 2020): the first principal component of the activations.

    Class-agnostic: the targets do not change the map.
    """

    uses_gradients = False

    def layer_map(self, state: CamState, layer: LayerState, eigen_smooth: bool) -> torch.Tensor:
        return principal_projection(layer.activations)


@register_method("randomcam")
class RandomCAM(BaseCAM):
    """Channel weights drawn uniformly from [-1, 1]: the floor any real method must beat in a metric.

    Seeded (``seed``) so a baseline is reproducible; each call draws new weights from the same stream.
    """

    uses_gradients = False
    params = ("seed",)

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str,
        reshape_transform: ReshapeTransform | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(model, target_layers, reshape_transform)
        self.generator = torch.Generator().manual_seed(seed)

    def channel_weights(self, state: CamState, layer: LayerState) -> torch.Tensor:
        n, c = layer.activations.shape[:2]
        weights = torch.rand(n, c, generator=self.generator) * 2 - 1
        return weights.to(layer.activations.device)
