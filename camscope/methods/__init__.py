"""The attribution methods: thin classes on one engine (:class:`BaseCAM`), registered by name."""

from camscope.methods.ablation import AblationCAM
from camscope.methods.activation import FEM, KPCACAM, EigenCAM, RandomCAM
from camscope.methods.attention import AttentionMap, AttentionRollout, GradientRollout, LeGrad
from camscope.methods.base import BaseCAM, CamState, LayerState
from camscope.methods.fullgrad import FullGrad
from camscope.methods.gradient import (
    EigenGradCAM,
    GradCAM,
    GradCAMElementWise,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    SegEigenCAM,
    XGradCAM,
)
from camscope.methods.guided import GuidedBackpropReLUModel, deprocess_image, guided_gradcam
from camscope.methods.meta import SESS, FinerCAM, RefineCAM
from camscope.methods.registry import get_method, method_names, register_method
from camscope.methods.relax import RELAX
from camscope.methods.scorecam import ScoreCAM
from camscope.methods.shapley import ShapleyCAM

__all__ = [
    "FEM",
    "KPCACAM",
    "RELAX",
    "SESS",
    "AblationCAM",
    "AttentionMap",
    "AttentionRollout",
    "BaseCAM",
    "CamState",
    "EigenCAM",
    "EigenGradCAM",
    "FinerCAM",
    "FullGrad",
    "GradCAM",
    "GradCAMElementWise",
    "GradCAMPlusPlus",
    "GradientRollout",
    "GuidedBackpropReLUModel",
    "HiResCAM",
    "LayerCAM",
    "LayerState",
    "LeGrad",
    "RandomCAM",
    "RefineCAM",
    "ScoreCAM",
    "SegEigenCAM",
    "ShapleyCAM",
    "XGradCAM",
    "deprocess_image",
    "get_method",
    "guided_gradcam",
    "method_names",
    "register_method",
]
