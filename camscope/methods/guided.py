"""Guided backpropagation (Springenberg et al., 2015) and guided Grad-CAM.

Guided backprop lets only positive gradients flow back through each ReLU. pytorch-grad-cam swaps the
model's ReLU modules for another class and back; here forward hooks put a gate after each ReLU for the
duration of one call, so the model itself is never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from camscope.core.capture import ReshapeTransform, eval_mode, model_device
from camscope.core.targets import TargetSpec, model_logits, resolve_targets, target_scores


class _PositiveGradientGate(torch.autograd.Function):
    """Identity forward; backward passes the gradient only where it and the ReLU's output are positive."""

    @staticmethod
    def forward(ctx: Any, relu_output: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(relu_output)
        return relu_output.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (relu_output,) = ctx.saved_tensors
        return _guided(grad, relu_output)


def _guided(grad: torch.Tensor, relu_output: torch.Tensor) -> torch.Tensor:
    """The guided-backprop rule: the gradient passes where it and the ReLU's output are positive."""
    gated: torch.Tensor = grad.clamp(min=0) * (relu_output > 0)
    return gated


class GuidedBackpropReLU(torch.autograd.Function):
    """A ReLU whose backward pass is guided (pytorch-grad-cam's function of the same name)."""

    @staticmethod
    def forward(ctx: Any, input_img: torch.Tensor) -> torch.Tensor:
        output = input_img.clamp(min=0)
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (output,) = ctx.saved_tensors
        return _guided(grad, output)


class GuidedBackpropReLUasModule(nn.Module):
    """:class:`GuidedBackpropReLU` as a module, to put in place of a model's ReLUs by hand."""

    def forward(self, input_img: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = GuidedBackpropReLU.apply(input_img)
        return output


class GuidedBackpropReLUModel:
    """``GuidedBackpropReLUModel(model)(input, target_category)`` → gradients at the input, channels last.

    Returns (H, W, 3) for a batch of one image (as pytorch-grad-cam does) and (N, H, W, 3) otherwise;
    ``target_category`` is a target spec (None = top-1, an int, a target callable or one per image).
    """

    def __init__(self, model: nn.Module, device: str | torch.device | None = None) -> None:
        self.model = model if device is None else model.to(device)

    def __call__(self, input_img: torch.Tensor, target_category: TargetSpec = None) -> np.ndarray:
        grads = self.compute(input_img, target_category)
        result = grads.permute(0, 2, 3, 1).detach().cpu().numpy()
        return result[0] if result.shape[0] == 1 else result

    def compute(self, input_img: torch.Tensor, targets: TargetSpec = None) -> torch.Tensor:
        """Guided gradients as a tensor (N, 3, H, W) on the model's device."""
        gates = [(m, _gate) for m in self.model.modules() if isinstance(m, nn.ReLU)]
        with eval_mode(self.model, gates), torch.inference_mode(False), torch.enable_grad():
            x = input_img.to(model_device(self.model)).detach().clone().requires_grad_(True)
            logits = model_logits(self.model(x))
            resolved = resolve_targets(targets, logits.detach())
            (grad,) = torch.autograd.grad(target_scores(resolved, logits).sum(), [x])
        return grad


def _gate(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> Any:
    """Forward hook after a ReLU: its output through the positive-gradient gate."""
    return _PositiveGradientGate.apply(output)


def deprocess_image(img: np.ndarray) -> np.ndarray:
    """Gradients → a viewable uint8 image: standardise, shrink to ±0.1 around grey, clip (keras-grad-cam)."""
    img = img - np.mean(img)
    img = img / (np.std(img) + 1e-5)
    img = np.clip(img * 0.1 + 0.5, 0, 1)
    return (img * 255).astype(np.uint8)


def guided_gradcam(
    model: nn.Module,
    target_layers: Sequence[nn.Module | str] | nn.Module | str,
    input_tensor: torch.Tensor,
    targets: TargetSpec = None,
    reshape_transform: ReshapeTransform | None = None,
) -> np.ndarray:
    """Guided Grad-CAM: the Grad-CAM map times the guided-backprop gradients, (N, H, W, 3) float32."""
    from camscope.methods.gradient import GradCAM

    maps = GradCAM(model, target_layers, reshape_transform)(input_tensor, targets)
    guided = GuidedBackpropReLUModel(model).compute(input_tensor, targets).permute(0, 2, 3, 1).cpu().numpy()
    combined: np.ndarray = (maps[..., None] * guided).astype(np.float32)
    return combined
