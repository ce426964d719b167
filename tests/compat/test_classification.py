"""Migration: the peer's README quick start and its ``cam.py`` (every method it lists, guided backprop)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.compat.helpers import assert_same, migrate, resnet18, scene

README = """
from pytorch_grad_cam import GradCAM, HiResCAM, ScoreCAM, GradCAMPlusPlus, AblationCAM, XGradCAM, EigenCAM, FullGrad
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from pytorch_grad_cam.utils.image import show_cam_on_image, preprocess_image

model = make_model()
target_layers = [model.layer4[-1]]
input_tensor = preprocess_image(rgb_img, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
targets = [ClassifierOutputTarget(281)]
with GradCAM(model=model, target_layers=target_layers) as cam:
    grayscale_cam = cam(input_tensor=input_tensor, targets=targets)
    grayscale_cam = grayscale_cam[0, :]
    visualization = show_cam_on_image(rgb_img, grayscale_cam, use_rgb=True)
    model_outputs = cam.outputs
"""


def test_readme_quick_start():
    peer, ours = migrate(README, make_model=resnet18, rgb_img=scene())
    assert_same(
        peer,
        ours,
        ["input_tensor", "grayscale_cam", "visualization", "model_outputs"],
        colored={"visualization": "grayscale_cam"},
    )
    assert ours["visualization"].dtype == np.uint8 and ours["grayscale_cam"].max() == pytest.approx(1.0)


# cam.py, one method per run (its --method flag); --aug-smooth / --eigen-smooth as flags
CAM_PY = """
import cv2
import numpy as np
from pytorch_grad_cam import (
    GradCAM, FEM, HiResCAM, ScoreCAM, GradCAMPlusPlus,
    AblationCAM, XGradCAM, EigenCAM, EigenGradCAM,
    LayerCAM, FullGrad, GradCAMElementWise, KPCA_CAM, ShapleyCAM,
    FinerCAM, SegEigenCAM
)
from pytorch_grad_cam import GuidedBackpropReLUModel
from pytorch_grad_cam.utils.image import show_cam_on_image, deprocess_image, preprocess_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget, ClassifierOutputReST

methods = {
    "gradcam": GradCAM, "hirescam": HiResCAM, "scorecam": ScoreCAM, "gradcam++": GradCAMPlusPlus,
    "ablationcam": AblationCAM, "xgradcam": XGradCAM, "eigencam": EigenCAM, "eigengradcam": EigenGradCAM,
    "layercam": LayerCAM, "fullgrad": FullGrad, "fem": FEM, "gradcamelementwise": GradCAMElementWise,
    "kpcacam": KPCA_CAM, "shapleycam": ShapleyCAM, "finercam": FinerCAM, "segeigencam": SegEigenCAM,
}
model = make_model()
target_layers = [model.layer4]
input_tensor = preprocess_image(rgb_img, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
targets = [ClassifierOutputReST(281)] if method == "shapleycam" else None
with methods[method](model=model, target_layers=target_layers) as cam:
    cam.batch_size = 32
    if method == "finercam":
        grayscale_cam = cam(input_tensor=input_tensor, targets=targets, eigen_smooth=eigen_smooth)
    else:
        grayscale_cam = cam(input_tensor=input_tensor, targets=targets, aug_smooth=aug_smooth,
                            eigen_smooth=eigen_smooth)
    grayscale_cam = grayscale_cam[0, :]
    cam_image = show_cam_on_image(rgb_img, grayscale_cam, use_rgb=True)
    cam_image = cv2.cvtColor(cam_image, cv2.COLOR_RGB2BGR)
if guided:
    gb_model = GuidedBackpropReLUModel(model=model, device="cpu")
    gb = gb_model(input_tensor, target_category=None)
    cam_mask = cv2.merge([grayscale_cam, grayscale_cam, grayscale_cam])
    cam_gb = deprocess_image(cam_mask * gb)
    gb = deprocess_image(gb)
"""

FAST = ["gradcam", "hirescam", "gradcam++", "xgradcam", "layercam", "fullgrad", "fem", "gradcamelementwise"]
FAST += ["kpcacam", "shapleycam", "finercam", "segeigencam"]


@pytest.mark.parametrize("method", FAST)
def test_cam_py_every_method(method):
    peer, ours = migrate(
        CAM_PY, make_model=resnet18, rgb_img=scene(), method=method, aug_smooth=False, eigen_smooth=False, guided=False
    )
    assert_same(peer, ours, ["grayscale_cam", "cam_image"], colored={"cam_image": "grayscale_cam"})


@pytest.mark.parametrize(("method", "eigen_smooth"), [("eigencam", False), ("eigengradcam", False), ("gradcam", True)])
def test_cam_py_principal_component_methods(method, eigen_smooth, sign_corrected_peer):
    """Deliberate difference: camscope orients the principal component (see the fixture)."""
    peer, ours = migrate(
        CAM_PY,
        make_model=resnet18,
        rgb_img=scene(),
        method=method,
        aug_smooth=False,
        eigen_smooth=eigen_smooth,
        guided=False,
    )
    assert_same(peer, ours, ["grayscale_cam", "cam_image"], colored={"cam_image": "grayscale_cam"})


@pytest.mark.slow
@pytest.mark.parametrize("method", ["scorecam", "ablationcam"])
def test_cam_py_perturbation_methods(method):
    peer, ours = migrate(
        CAM_PY, make_model=resnet18, rgb_img=scene(), method=method, aug_smooth=False, eigen_smooth=False, guided=False
    )
    assert_same(peer, ours, ["grayscale_cam", "cam_image"], colored={"cam_image": "grayscale_cam"})


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradcam", "layercam"])
def test_cam_py_smoothing_flags_and_guided_backprop(method, sign_corrected_peer):
    peer, ours = migrate(
        CAM_PY, make_model=resnet18, rgb_img=scene(), method=method, aug_smooth=True, eigen_smooth=True, guided=True
    )
    assert_same(peer, ours, ["grayscale_cam", "cam_image", "gb", "cam_gb"], colored={"cam_image": "grayscale_cam"})
