"""``pytorch_grad_cam.kpca_cam`` → camscope: KPCA_CAM: camscope's KPCACAM (kernel, gamma as in the peer)."""

from camscope.compat import get_2d_projection_kernel
from camscope.methods.activation import KPCACAM as KPCA_CAM
from camscope.methods.base import BaseCAM

__all__ = ["KPCA_CAM", "BaseCAM", "get_2d_projection_kernel"]
