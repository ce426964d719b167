"""``pytorch_grad_cam.utils`` → camscope: the peer's helper modules, each routed to camscope's definitions."""

from camscope.compat import get_2d_projection
from camscope.methods.guided import deprocess_image
from camscope.utils import model_targets, reshape_transforms

__all__ = ["deprocess_image", "get_2d_projection", "model_targets", "reshape_transforms"]
