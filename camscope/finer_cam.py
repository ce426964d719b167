"""``pytorch_grad_cam.finer_cam`` → camscope: FinerCAM."""

from camscope.core.targets import FinerWeightedTarget
from camscope.methods.gradient import GradCAM
from camscope.methods.meta import DEFAULT_COMPARISON_CATEGORIES, FinerCAM

__all__ = ["DEFAULT_COMPARISON_CATEGORIES", "FinerCAM", "FinerWeightedTarget", "GradCAM"]
