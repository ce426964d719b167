"""``pytorch_grad_cam.sess`` → camscope: SESS."""

from camscope.compat import scale_cam_image
from camscope.core.targets import ClassifierOutputTarget
from camscope.methods.gradient import GradCAM
from camscope.methods.meta import SESS, sliding_window, window_starts

__all__ = ["SESS", "ClassifierOutputTarget", "GradCAM", "scale_cam_image", "sliding_window", "window_starts"]
