"""``pytorch_grad_cam.seg_eigen_cam`` → camscope: SegEigenCAM."""

from camscope.compat import get_2d_projection_with_sign_correction
from camscope.methods.base import BaseCAM
from camscope.methods.gradient import SegEigenCAM

__all__ = ["BaseCAM", "SegEigenCAM", "get_2d_projection_with_sign_correction"]
