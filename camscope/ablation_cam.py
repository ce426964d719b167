"""``pytorch_grad_cam.ablation_cam`` under camscope's name.

AblationCAM (camscope's: ablations from the cached activation, see camscope.compat.DIFFERENCES).
"""

from camscope.base_cam import BaseCAM
from camscope.compat import AblationLayer
from camscope.methods.ablation import AblationCAM
from camscope.utils.find_layers import replace_layer_recursive

__all__ = ["AblationCAM", "AblationLayer", "BaseCAM", "replace_layer_recursive"]
