"""An edge map as a baseline "explanation": what any CAM should beat in a faithfulness metric.

``sobel_cam`` is pytorch-grad-cam's baseline of the same name, computed without OpenCV with OpenCV's
integer arithmetic: grey = (9798 R + 19235 G + 3735 B + 2¹⁴) >> 15 (``COLOR_RGB2GRAY``), 3×3 Sobel
derivatives with mirrored borders (``BORDER_REFLECT_101``), their absolute values saturated to uint8
and averaged with round-half-to-even (``convertScaleAbs``, ``addWeighted``).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate

from camscope.core.errors import InputError

_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)


def sobel_cam(img: np.ndarray) -> np.ndarray:
    """Gradient magnitude of a uint8 RGB image (H, W, 3) as a uint8 (H, W) map."""
    pixels = np.asarray(img)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise InputError(f"sobel_cam expects a uint8 RGB image (H, W, 3), got {pixels.dtype} {pixels.shape}")
    rgb = pixels.astype(np.int64)
    grey = ((9798 * rgb[..., 0] + 19235 * rgb[..., 1] + 3735 * rgb[..., 2] + (1 << 14)) >> 15).astype(np.float64)
    grad_x = np.clip(np.abs(correlate(grey, _SOBEL_X, mode="mirror")), 0, 255)
    grad_y = np.clip(np.abs(correlate(grey, _SOBEL_X.T, mode="mirror")), 0, 255)
    edges: np.ndarray = np.clip(np.rint(0.5 * grad_x + 0.5 * grad_y), 0, 255).astype(np.uint8)
    return edges
