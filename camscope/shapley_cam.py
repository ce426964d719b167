"""``pytorch_grad_cam.shapley_cam`` → camscope: ShapleyCAM."""

from camscope.methods.base import BaseCAM
from camscope.methods.newer import ShapleyCAM
from camscope.targets import ClassifierOutputTarget

__all__ = ["BaseCAM", "ClassifierOutputTarget", "ShapleyCAM"]
