"""ShapleyCAM: Grad-CAM with a second-order (Hessian-vector) correction of the gradients.

Notation as in :mod:`camscope.methods.gradient`: A, G are (N, C, h, w) activations and gradients.
"""

from __future__ import annotations

import torch

from camscope.core.capture import LayerCapture, to_grid
from camscope.core.targets import TargetSpec, model_logits, resolve_targets, target_scores
from camscope.methods.attention_capture import unfused_attention
from camscope.methods.base import BaseCAM, CamState, LayerState
from camscope.methods.registry import register_method


@register_method("shapleycam", "shapley-cam")
class ShapleyCAM(BaseCAM):
    """ShapleyCAM (Cai et al., 2025): w_k = mean over positions of (G − ½·H·A)_k, where H·A is the
    Hessian-vector product ∂(G·A)/∂A — a second-order Taylor estimate of each channel's Shapley value.
    Pair it with :class:`camscope.core.targets.ClassifierOutputReST` (for a plain logit after a linear head
    the Hessian is zero and ShapleyCAM is Grad-CAM). Fused attention is switched off for the call
    (SDPA kernels have no double backward).
    """

    def channel_weights(self, state: CamState, layer: LayerState) -> torch.Tensor:
        assert layer.grads is not None
        return layer.grads.mean(dim=(2, 3))

    def forward_pass(self, x: torch.Tensor, targets: TargetSpec) -> CamState:
        """One forward pass, the gradient with a graph, then H·A by a second backward pass; the layer's
        ``grads`` in the returned state are the ShapleyCAM gradients G − ½·H·A."""
        with (
            unfused_attention(self.model),
            LayerCapture(self.model, self.target_layers, need_grad=True) as capture,
            torch.enable_grad(),
        ):
            logits = model_logits(capture.forward(x.detach()))
            resolved = resolve_targets(targets, logits.detach())
            outputs = capture.recorded()
            score = target_scores(resolved, logits).sum()
            grads = torch.autograd.grad(score, outputs, create_graph=True)
            hvps = torch.autograd.grad(grads, outputs, grad_outputs=outputs, allow_unused=True)
            state = CamState(x.detach(), logits.detach(), resolved)
            self.outputs = state.logits
            for index, (layer, name, out, grad, hvp) in enumerate(
                zip(self.target_layers, capture.names, outputs, grads, hvps)
            ):
                effective = grad.detach() - 0.5 * (hvp.detach() if hvp is not None else 0)
                activations = to_grid(out.detach(), self.reshape_transform, name)
                grid_grad = to_grid(effective, self.reshape_transform, name)
                state.layers.append(LayerState(index, layer, name, out.detach(), activations, grid_grad))
        return state
