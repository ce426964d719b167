"""``pytorch_grad_cam.shapley_cam`` → camscope: ShapleyCAM."""

from camscope.core.targets import ClassifierOutputTarget
from camscope.methods.base import BaseCAM
from camscope.methods.shapley import ShapleyCAM

__all__ = ["BaseCAM", "ClassifierOutputTarget", "ShapleyCAM"]
