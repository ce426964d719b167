"""``pytorch_grad_cam.guided_backprop`` under camscope's name.

Guided backpropagation (camscope gates the ReLUs with hooks; the model is never modified).
"""

from camscope.methods.guided import GuidedBackpropReLU, GuidedBackpropReLUasModule, GuidedBackpropReLUModel
from camscope.utils.find_layers import replace_all_layer_type_recursive

__all__ = [
    "GuidedBackpropReLU",
    "GuidedBackpropReLUModel",
    "GuidedBackpropReLUasModule",
    "replace_all_layer_type_recursive",
]
