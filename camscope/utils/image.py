"""``pytorch_grad_cam.utils.image`` → camscope: Image helpers: overlays, preprocessing, map scaling."""

from camscope.compat import scale_accross_batch_and_channels, scale_cam_image
from camscope.methods.guided import deprocess_image
from camscope.models.preprocess import preprocess_image
from camscope.viz import create_labels_legend, show_cam_on_image, show_factorization_on_image

__all__ = [
    "create_labels_legend",
    "deprocess_image",
    "preprocess_image",
    "scale_accross_batch_and_channels",
    "scale_cam_image",
    "show_cam_on_image",
    "show_factorization_on_image",
]
