"""``pytorch_grad_cam.fem`` → camscope: FEM."""

from camscope.methods.activation import FEM
from camscope.methods.base import BaseCAM

__all__ = ["FEM", "BaseCAM"]
