"""``pytorch_grad_cam.eigen_cam`` → camscope: EigenCAM (its principal component's sign is fixed in camscope)."""

from camscope.compat import get_2d_projection
from camscope.methods.activation import EigenCAM
from camscope.methods.base import BaseCAM

__all__ = ["BaseCAM", "EigenCAM", "get_2d_projection"]
