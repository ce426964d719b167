"""The mini zoo: nine small models mirroring the seed's nine, trained on the synthetic shapes.

Importing this package registers ``mini_resnet``, ``mini_deit``, ``mini_cait``, ``mini_swin``,
``mini_xcit``, ``mini_dino_resnet``, ``mini_dino_xcit``, ``mini_mocov3_resnet`` and
``mini_mocov3_vit`` in the model zoo; their weights ship in ``camscope/zoo_weights``. Training code:
:mod:`camscope.mini.train` (``camscope train-mini``).
"""

from camscope.mini.zoo import MINI_MODELS, PREPROCESS, mini_specs, register_mini_models

__all__ = ["MINI_MODELS", "PREPROCESS", "mini_specs", "register_mini_models"]
