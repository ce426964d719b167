"""``pytorch_grad_cam.grad_cam`` → camscope: GradCAM."""

from camscope.methods.base import BaseCAM
from camscope.methods.gradient import GradCAM

__all__ = ["BaseCAM", "GradCAM"]
