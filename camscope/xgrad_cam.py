"""``pytorch_grad_cam.xgrad_cam`` → camscope: XGradCAM."""

from camscope.methods.base import BaseCAM
from camscope.methods.gradient import XGradCAM

__all__ = ["BaseCAM", "XGradCAM"]
