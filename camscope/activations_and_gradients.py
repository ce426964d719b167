"""``pytorch_grad_cam.activations_and_gradients`` under camscope's name.

The peer's hook recorder (camscope's methods hook inside each call instead).
"""

from camscope.compat import ActivationsAndGradients

__all__ = ["ActivationsAndGradients"]
