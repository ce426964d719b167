"""``pytorch_grad_cam.utils.svd_on_activations`` under camscope's name.

Principal-component projections of activations (numpy in, numpy out).
"""

from camscope.compat import get_2d_projection, get_2d_projection_kernel, get_2d_projection_with_sign_correction

__all__ = ["get_2d_projection", "get_2d_projection_kernel", "get_2d_projection_with_sign_correction"]
