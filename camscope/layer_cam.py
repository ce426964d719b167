"""``pytorch_grad_cam.layer_cam`` → camscope: LayerCAM."""

from camscope.compat import get_2d_projection
from camscope.methods.base import BaseCAM
from camscope.methods.gradient import LayerCAM

__all__ = ["BaseCAM", "LayerCAM", "get_2d_projection"]
