"""``pytorch_grad_cam.ablation_cam_multilayer`` under camscope's name.

The multi-layer Ablation-CAM: camscope's AblationCAM takes several layers itself.
"""

from camscope.base_cam import BaseCAM
from camscope.compat import LayerAblation as AblationLayer
from camscope.methods.ablation import AblationCAM
from camscope.utils.find_layers import replace_layer_recursive

__all__ = ["AblationCAM", "AblationLayer", "BaseCAM", "replace_layer_recursive"]
