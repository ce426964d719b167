"""``pytorch_grad_cam.eigen_grad_cam`` under camscope's name.

EigenGradCAM (its principal component's sign is fixed in camscope).
"""

from camscope.compat import get_2d_projection
from camscope.methods.base import BaseCAM
from camscope.methods.gradient import EigenGradCAM

__all__ = ["BaseCAM", "EigenGradCAM", "get_2d_projection"]
