"""camscope: what supervised and self-supervised vision models look at, and how faithful the maps are.

Drop-in for pytorch-grad-cam users: every public name of pytorch-grad-cam 1.5.7 is importable at the same
module path with the package name replaced (``camscope.utils.image``, ``camscope.metrics.road`` …)::

    from camscope import GradCAM
    from camscope.utils.model_targets import ClassifierOutputTarget
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
    SESS,
    AblationCAM,
    AttentionMap,
    AttentionRollout,
    BaseCAM,
    EigenCAM,
    EigenGradCAM,
    FinerCAM,
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
    RefineCAM,
    ScoreCAM,
    SegEigenCAM,
    ShapleyCAM,
    XGradCAM,
    deprocess_image,
    get_method,
    guided_gradcam,
    method_names,
)

__version__ = "0.1.0"

KPCA_CAM = KPCACAM  # pytorch-grad-cam's name

# Heavier parts load on first use, so `import camscope` stays quick.
_LAZY = {
    "load_model": "camscope.models",
    "get_spec": "camscope.models",
    "explain": "camscope.api",
    "embed": "camscope.pipeline",
    "attention_heads": "camscope.api",
    "Explanation": "camscope.api",
    "evaluate": "camscope.api",
    # pytorch-grad-cam's remaining top-level names (camscope.compat, camscope.methods.factorization)
    "ActivationsAndGradients": "camscope.compat",
    "AblationLayer": "camscope.compat",
    "AblationLayerVit": "camscope.compat",
    "AblationLayerFasterRCNN": "camscope.compat",
    "DeepFeatureFactorization": "camscope.methods.factorization",
    "run_dff_on_image": "camscope.methods.factorization",
}
#: subpackages reachable as attributes after ``import camscope``, as pytorch-grad-cam's are
_SUBPACKAGES = ("utils", "metrics", "models", "methods", "feature_factorization")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:
        return import_module(f"camscope.{name}")
    raise AttributeError(f"module 'camscope' has no attribute {name!r}")


__all__ = [
    "FEM",
    "KPCACAM",
    "KPCA_CAM",
    "RELAX",
    "SESS",
    "AblationCAM",
    "AblationLayer",
    "AblationLayerFasterRCNN",
    "AblationLayerVit",
    "ActivationsAndGradients",
    "AttentionMap",
    "AttentionRollout",
    "BaseCAM",
    "ClassifierOutputReST",
    "ClassifierOutputSoftmaxTarget",
    "ClassifierOutputTarget",
    "CorpusTarget",
    "DeepFeatureFactorization",
    "EigenCAM",
    "EigenGradCAM",
    "Explanation",
    "FinerCAM",
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
    "RefineCAM",
    "ScoreCAM",
    "SegEigenCAM",
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
    "run_dff_on_image",
]
