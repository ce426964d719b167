"""Gradient-weighted methods: each one is a formula on the activations A and gradients G of one layer.

Notation: A, G have shape (N, C, h, w); sums and means run over the spatial positions unless stated.
"""

from __future__ import annotations

import torch

from camscope.methods.base import BaseCAM, CamState, LayerState, principal_projection
from camscope.methods.registry import register_method


def _grads(layer: LayerState) -> torch.Tensor:
    assert layer.grads is not None, "gradient methods run with uses_gradients=True"
    return layer.grads


@register_method("gradcam", "grad-cam")
class GradCAM(BaseCAM):
    """Grad-CAM (Selvaraju et al., ICCV 2017): w_c = mean(G_c); map = ReLU(Σ_c w_c A_c)."""

    def channel_weights(self, state: CamState, layer: LayerState) -> torch.Tensor:
        return _grads(layer).mean(dim=(2, 3))


@register_method("gradcam++", "gradcampp", "gradcamplusplus", "grad-cam++")
class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++ (Chattopadhyay et al., WACV 2018), with exp(score) gradients approximated by powers of G:

    α = G² / (2G² + ΣA · G³ + ε),  w_c = Σ α · ReLU(G_c)   (α = 0 where G = 0).
    """

    def channel_weights(self, state: CamState, layer: LayerState) -> torch.Tensor:
        grads, acts = _grads(layer), layer.activations
        g2 = grads.pow(2)
        g3 = g2 * grads
        sum_acts = acts.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + sum_acts * g3 + 1e-6)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        return (torch.relu(grads) * alpha).sum(dim=(2, 3))


@register_method("xgradcam", "xgrad-cam")
class XGradCAM(BaseCAM):
    """XGrad-CAM (Fu et al., BMVC 2020): w_c = Σ G_c A_c / (Σ A_c + ε)."""

    def channel_weights(self, state: CamState, layer: LayerState) -> torch.Tensor:
        acts = layer.activations
        return (_grads(layer) * acts / (acts.sum(dim=(2, 3), keepdim=True) + 1e-7)).sum(dim=(2, 3))


class _ElementwiseCAM(BaseCAM):
    """Methods whose map is Σ_c f(G, A) per position rather than channel weights."""

    def elementwise(self, grads: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def layer_map(self, state: CamState, layer: LayerState, eigen_smooth: bool) -> torch.Tensor:
        product = self.elementwise(_grads(layer), layer.activations)
        return principal_projection(product) if eigen_smooth else product.sum(dim=1)


@register_method("hirescam")
class HiResCAM(_ElementwiseCAM):
    """HiResCAM (Draelos & Carin, 2020): map = Σ_c G_c ⊙ A_c — provably faithful for a linear head."""

    def elementwise(self, grads: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        return grads * acts


@register_method("gradcamelementwise", "gradcam-elementwise")
class GradCAMElementWise(_ElementwiseCAM):
    """Element-wise Grad-CAM (pytorch-grad-cam): map = Σ_c ReLU(G_c ⊙ A_c)."""

    def elementwise(self, grads: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        return torch.relu(grads * acts)


@register_method("layercam")
class LayerCAM(_ElementwiseCAM):
    """LayerCAM (Jiang et al., TIP 2021): map = Σ_c ReLU(G_c) ⊙ A_c."""

    def elementwise(self, grads: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        return torch.relu(grads) * acts


@register_method("eigengradcam")
class EigenGradCAM(BaseCAM):
    """EigenGrad-CAM: the first principal component of G ⊙ A (class-discriminative Eigen-CAM)."""

    def layer_map(self, state: CamState, layer: LayerState, eigen_smooth: bool) -> torch.Tensor:
        return principal_projection(_grads(layer) * layer.activations)


@register_method("segeigencam", "seg-eigen-cam")
class SegEigenCAM(BaseCAM):
    """Seg-Eigen-CAM (Chung & Ying, Appl. Sci. 2025): the first principal component of |G| ⊙ A, its sign
    corrected so that the salient side is positive (Eq. 13). Always a projection: ``eigen_smooth`` changes
    nothing, as in pytorch-grad-cam."""

    def layer_map(self, state: CamState, layer: LayerState, eigen_smooth: bool) -> torch.Tensor:
        return principal_projection(_grads(layer).abs() * layer.activations)
