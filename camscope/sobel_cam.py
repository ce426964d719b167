"""``pytorch_grad_cam.sobel_cam`` under camscope's name.

sobel_cam: the edge-map baseline (computed without OpenCV, same pixels).
"""

from camscope.methods.sobel import sobel_cam

__all__ = ["sobel_cam"]
