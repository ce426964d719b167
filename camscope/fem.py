"""``pytorch_grad_cam.fem`` → camscope: FEM."""

from camscope.methods.base import BaseCAM
from camscope.methods.newer import FEM

__all__ = ["FEM", "BaseCAM"]
