"""Methods that need no gradients: Eigen-CAM, KPCA-CAM, FEM and the RandomCAM baseline.

Notation as in :mod:`camscope.methods.gradient`: A is the (N, C, h, w) activation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from camscope.core.capture import ReshapeTransform
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


@register_method("kpcacam", "kpca-cam")
class KPCACAM(BaseCAM):
    """KPCA-CAM (Karmani et al., 2024): the first kernel-PCA component of the positions' channel vectors.

    X = A's (h·w, C) matrix, centred over positions; K = tanh(γ X Xᵀ + c₀) (sigmoid kernel, γ = 1/C
    by default, c₀ = 1), double-centred; map = √λ₁ v₁ (first eigenpair), its sign chosen so that the
    entry of largest magnitude is positive — what scikit-learn's ``KernelPCA`` returns. Class-agnostic.
    """

    uses_gradients = False
    params = ("gamma", "coef0")

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str,
        reshape_transform: ReshapeTransform | None = None,
        gamma: float | None = None,
        coef0: float = 1.0,
    ) -> None:
        super().__init__(model, target_layers, reshape_transform)
        self.gamma = gamma
        self.coef0 = coef0

    def layer_map(self, state: CamState, layer: LayerState, eigen_smooth: bool) -> torch.Tensor:
        n, c, h, w = layer.activations.shape
        x = torch.nan_to_num(layer.activations.double()).reshape(n, c, h * w).transpose(1, 2)
        x = x - x.mean(dim=1, keepdim=True)
        gamma = self.gamma if self.gamma is not None else 1.0 / c
        kernel = torch.tanh(gamma * x @ x.transpose(1, 2) + self.coef0)
        kernel = kernel - kernel.mean(dim=1, keepdim=True) - kernel.mean(dim=2, keepdim=True)
        kernel = kernel + kernel.mean(dim=(1, 2), keepdim=True)
        values, vectors = torch.linalg.eigh(kernel)
        top = vectors[..., -1]
        strongest = top.gather(1, top.abs().argmax(dim=1, keepdim=True))
        top = top * torch.sign(strongest)
        projection: torch.Tensor = top * values[:, -1:].clamp(min=0).sqrt()
        return projection.reshape(n, h, w).to(layer.activations.dtype)


@register_method("fem")
class FEM(BaseCAM):
    """FEM, Feature Explanation Method (Fuad et al., IPTA 2020): w_k = mean over positions of
    1[A_k > μ_k + k·σ_k] (μ, σ: the channel's mean and population std over positions, k = 2); map = Σ w_k A_k.
    Class-agnostic."""

    uses_gradients = False
    params = ("k",)

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str,
        reshape_transform: ReshapeTransform | None = None,
        k: float = 2.0,
    ) -> None:
        super().__init__(model, target_layers, reshape_transform)
        self.k = k

    def channel_weights(self, state: CamState, layer: LayerState) -> torch.Tensor:
        acts = layer.activations
        mean = acts.mean(dim=(2, 3), keepdim=True)
        std = acts.std(dim=(2, 3), keepdim=True, correction=0)
        return (acts > mean + self.k * std).to(acts.dtype).mean(dim=(2, 3))
