"""``pytorch_grad_cam.grad_cam_elementwise`` → camscope: GradCAMElementWise."""

from camscope.compat import get_2d_projection
from camscope.methods.base import BaseCAM
from camscope.methods.gradient import GradCAMElementWise

__all__ = ["BaseCAM", "GradCAMElementWise", "get_2d_projection"]
