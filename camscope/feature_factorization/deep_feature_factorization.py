"""``pytorch_grad_cam.feature_factorization.deep_feature_factorization`` → camscope: Deep Feature Factorization."""

from camscope.compat import ActivationsAndGradients, scale_cam_image
from camscope.methods.factorization import DeepFeatureFactorization, dff, run_dff_on_image
from camscope.viz import create_labels_legend, show_factorization_on_image

__all__ = [
    "ActivationsAndGradients",
    "DeepFeatureFactorization",
    "create_labels_legend",
    "dff",
    "run_dff_on_image",
    "scale_cam_image",
    "show_factorization_on_image",
]
