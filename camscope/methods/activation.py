"""Methods that need no gradients: Eigen-CAM, KPCA-CAM, FEM and the RandomCAM baseline.

Notation as in :mod:`camscope.methods.gradient`: A is the (N, C, h, w) activation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from camscope.core.capture import ReshapeTransform
from camscope.core.errors import CamscopeError
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


#: scikit-learn's pairwise kernels that ``KernelPCA(kernel=...)`` accepts by name (degree 3 for "poly").
KERNELS = ("sigmoid", "linear", "poly", "rbf", "cosine")


def kernel_matrix(x: torch.Tensor, kernel: str, gamma: float | None, coef0: float) -> torch.Tensor:
    """K(x_i, x_j) for the rows of each (N, P, C) batch, as scikit-learn defines ``kernel`` (γ = 1/C by default)."""
    if kernel not in KERNELS:
        raise CamscopeError(f"unknown KPCA kernel {kernel!r}: use one of {', '.join(KERNELS)}")
    g = gamma if gamma is not None else 1.0 / x.shape[-1]
    dots = x @ x.transpose(1, 2)
    if kernel == "sigmoid":
        return torch.tanh(g * dots + coef0)
    if kernel == "poly":
        return (g * dots + coef0) ** 3
    if kernel == "rbf":
        squared = dots.diagonal(dim1=1, dim2=2)
        return torch.exp(-g * (squared[:, :, None] + squared[:, None, :] - 2 * dots).clamp(min=0))
    if kernel == "cosine":
        norms = dots.diagonal(dim1=1, dim2=2).sqrt().clamp(min=1e-12)
        return dots / (norms[:, :, None] * norms[:, None, :])
    return dots


def kernel_projection(
    activations: torch.Tensor, kernel: str = "sigmoid", gamma: float | None = None, coef0: float = 1.0
) -> torch.Tensor:
    """First kernel-PCA component of each position's channel vector, (N, C, h, w) → (N, h, w).

    X = A's (h·w, C) matrix, centred over positions; K = kernel(X), double-centred; the projection is
    √λ₁ v₁ (first eigenpair), its sign chosen so that the entry of largest magnitude is positive —
    what scikit-learn's ``KernelPCA(n_components=1)`` returns.
    """
    n, c, h, w = activations.shape
    x = torch.nan_to_num(activations.double()).reshape(n, c, h * w).transpose(1, 2)
    x = x - x.mean(dim=1, keepdim=True)
    k = kernel_matrix(x, kernel, gamma, coef0)
    k = k - k.mean(dim=1, keepdim=True) - k.mean(dim=2, keepdim=True) + k.mean(dim=(1, 2), keepdim=True)
    values, vectors = torch.linalg.eigh(k)
    top = vectors[..., -1]
    strongest = top.gather(1, top.abs().argmax(dim=1, keepdim=True))
    top = top * torch.sign(strongest)
    projection: torch.Tensor = top * values[:, -1:].clamp(min=0).sqrt()
    return projection.reshape(n, h, w).to(activations.dtype)


@register_method("kpcacam", "kpca-cam")
class KPCACAM(BaseCAM):
    """KPCA-CAM (Karmani et al., 2024): the first kernel-PCA component of the positions' channel vectors
    (:func:`kernel_projection`; default the sigmoid kernel tanh(γ X Xᵀ + c₀), γ = 1/C, c₀ = 1). Class-agnostic.

    The parameters are pytorch-grad-cam's ``KPCA_CAM(model, target_layers, reshape_transform, kernel, gamma)``.
    """

    uses_gradients = False
    params = ("kernel", "gamma", "coef0")

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str,
        reshape_transform: ReshapeTransform | None = None,
        kernel: str = "sigmoid",
        gamma: float | None = None,
        coef0: float = 1.0,
    ) -> None:
        super().__init__(model, target_layers, reshape_transform)
        if kernel not in KERNELS:
            raise CamscopeError(f"unknown KPCA kernel {kernel!r}: use one of {', '.join(KERNELS)}")
        self.kernel = kernel
        self.gamma = gamma
        self.coef0 = coef0

    def layer_map(self, state: CamState, layer: LayerState, eigen_smooth: bool) -> torch.Tensor:
        return kernel_projection(layer.activations, self.kernel, self.gamma, self.coef0)


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
