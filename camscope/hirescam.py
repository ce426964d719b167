"""``pytorch_grad_cam.hirescam`` → camscope: HiResCAM."""

from camscope.compat import get_2d_projection
from camscope.methods.base import BaseCAM
from camscope.methods.gradient import HiResCAM

__all__ = ["BaseCAM", "HiResCAM", "get_2d_projection"]
