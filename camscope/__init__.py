"""camscope: what supervised and self-supervised vision models look at, and how faithful the maps are.

Drop-in for pytorch-grad-cam users (same class names and call shape)::

    from camscope import GradCAM, ClassifierOutputTarget
    with GradCAM(model, target_layers=[model.layer4[-1]]) as cam:
        maps = cam(input_tensor, targets=[ClassifierOutputTarget(281)])  # np.float32 (N, H, W) in [0, 1]
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from camscope.core.targets import (
    ClassifierOutputReST,
    ClassifierOutputSoftmaxTarget,
    ClassifierOutputTarget,
    CorpusTarget,
    FinerWeightedTarget,
    SimilarityTarget,
)
from camscope.methods import (
    FEM,
    KPCACAM,
    RELAX,
    AblationCAM,
    AttentionMap,
    AttentionRollout,
    BaseCAM,
    EigenCAM,
    EigenGradCAM,
    FullGrad,
    GradCAM,
    GradCAMElementWise,
    GradCAMPlusPlus,
    GradientRollout,
    GuidedBackpropReLUModel,
    HiResCAM,
    LayerCAM,
    LeGrad,
    RandomCAM,
    ScoreCAM,
    ShapleyCAM,
    XGradCAM,
    deprocess_image,
    get_method,
    guided_gradcam,
    method_names,
)

__version__ = "0.1.0"

# Heavier parts load on first use, so `import camscope` stays quick.
_LAZY = {
    "load_model": "camscope.models",
    "get_spec": "camscope.models",
    "explain": "camscope.api",
    "embed": "camscope.pipeline",
    "attention_heads": "camscope.api",
    "Explanation": "camscope.api",
    "evaluate": "camscope.api",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'camscope' has no attribute {name!r}")


__all__ = [
    "FEM",
    "KPCACAM",
    "RELAX",
    "AblationCAM",
    "AttentionMap",
    "AttentionRollout",
    "BaseCAM",
    "ClassifierOutputReST",
    "ClassifierOutputSoftmaxTarget",
    "ClassifierOutputTarget",
    "CorpusTarget",
    "EigenCAM",
    "EigenGradCAM",
    "Explanation",
    "FinerWeightedTarget",
    "FullGrad",
    "GradCAM",
    "GradCAMElementWise",
    "GradCAMPlusPlus",
    "GradientRollout",
    "GuidedBackpropReLUModel",
    "HiResCAM",
    "LayerCAM",
    "LeGrad",
    "RandomCAM",
    "ScoreCAM",
    "ShapleyCAM",
    "SimilarityTarget",
    "XGradCAM",
    "attention_heads",
    "deprocess_image",
    "embed",
    "evaluate",
    "explain",
    "get_method",
    "get_spec",
    "guided_gradcam",
    "load_model",
    "method_names",
]
