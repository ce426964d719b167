"""``pytorch_grad_cam.grad_cam_plusplus`` → camscope: GradCAMPlusPlus."""

from camscope.methods.base import BaseCAM
from camscope.methods.gradient import GradCAMPlusPlus

__all__ = ["BaseCAM", "GradCAMPlusPlus"]
