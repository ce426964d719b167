"""``pytorch_grad_cam.finer_cam`` → camscope: FinerCAM."""

from camscope.methods.gradient import GradCAM
from camscope.methods.meta import DEFAULT_COMPARISON_CATEGORIES, FinerCAM
from camscope.targets import FinerWeightedTarget

__all__ = ["DEFAULT_COMPARISON_CATEGORIES", "FinerCAM", "FinerWeightedTarget", "GradCAM"]
