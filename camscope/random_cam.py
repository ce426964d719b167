"""``pytorch_grad_cam.random_cam`` → camscope: RandomCAM (seeded in camscope)."""

from camscope.methods.activation import RandomCAM
from camscope.methods.base import BaseCAM

__all__ = ["BaseCAM", "RandomCAM"]
