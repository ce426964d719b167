"""``pytorch_grad_cam.ablation_layer`` under camscope's name.

Ablation layers: declarations that camscope's AblationCAM accepts (it ablates by itself).
"""

from camscope.compat import AblationLayer, AblationLayerFasterRCNN, AblationLayerVit, get_2d_projection

__all__ = ["AblationLayer", "AblationLayerFasterRCNN", "AblationLayerVit", "get_2d_projection"]
