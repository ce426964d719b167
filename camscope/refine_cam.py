"""``pytorch_grad_cam.refine_cam`` → camscope: RefineCAM."""

from camscope.compat import scale_cam_image
from camscope.methods.gradient import GradCAMPlusPlus
from camscope.methods.meta import RefineCAM

__all__ = ["GradCAMPlusPlus", "RefineCAM", "scale_cam_image"]
