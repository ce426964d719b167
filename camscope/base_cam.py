"""``pytorch_grad_cam.base_cam`` under camscope's name.

BaseCAM: camscope's one engine (subclasses give ``channel_weights`` or ``layer_map``).
"""

from camscope.compat import ActivationsAndGradients, get_2d_projection, scale_cam_image
from camscope.core.targets import ClassifierOutputTarget
from camscope.methods.base import BaseCAM

__all__ = ["ActivationsAndGradients", "BaseCAM", "ClassifierOutputTarget", "get_2d_projection", "scale_cam_image"]
