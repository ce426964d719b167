"""``pytorch_grad_cam.fullgrad_cam`` → camscope: FullGrad."""

from camscope.compat import get_2d_projection, scale_accross_batch_and_channels, scale_cam_image
from camscope.methods.base import BaseCAM
from camscope.methods.fullgrad import FullGrad
from camscope.utils.find_layers import find_layer_predicate_recursive

__all__ = [
    "BaseCAM",
    "FullGrad",
    "find_layer_predicate_recursive",
    "get_2d_projection",
    "scale_accross_batch_and_channels",
    "scale_cam_image",
]
