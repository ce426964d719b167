"""Migration: the newer methods (FinerCAM, RefineCAM, SESS, KPCA kernels), the targets and the utilities."""

from __future__ import annotations

import pytest

from tests.compat.helpers import OURS, PEER, assert_same, migrate, resnet18, run, scene

NEWER = """
from pytorch_grad_cam import FinerCAM, KPCA_CAM, RefineCAM, SESS, GradCAM
from pytorch_grad_cam.utils.image import preprocess_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget, FinerWeightedTarget

model = make_model()
input_tensor = preprocess_image(rgb_img, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
with FinerCAM(model=model, target_layers=[model.layer4]) as cam:
    finer_default = cam(input_tensor)
    finer_options = cam(input_tensor, alpha=0.6, comparison_categories=[1, 2], target_idx=7)
    finer_given = cam(input_tensor, targets=[FinerWeightedTarget(3, [5, 9], 1.0)])
kpca_rbf = KPCA_CAM(model, [model.layer4], kernel="rbf", gamma=0.01)(input_tensor, None)
kpca_cosine = KPCA_CAM(model, [model.layer4], kernel="cosine")(input_tensor, None)
refine = RefineCAM(model, [model.layer3, model.layer4])(input_tensor, [ClassifierOutputTarget(3)])
"""


def test_newer_methods():
    peer, ours = migrate(NEWER, make_model=resnet18, rgb_img=scene())
    names = ["finer_default", "finer_options", "finer_given", "kpca_rbf", "kpca_cosine", "refine"]
    assert_same(peer, ours, names)


SESS_SCRIPT = """
from pytorch_grad_cam import SESS, GradCAM
from pytorch_grad_cam.utils.image import preprocess_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

model = make_model()
input_tensor = preprocess_image(rgb_img, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
with SESS(model, [model.layer4], base_method=GradCAM, scales=[48, 64], window_size=32, step_size=16) as sess:
    sess_mean = sess(input_tensor, [ClassifierOutputTarget(3)])
sess_max = SESS(model, [model.layer4], scales=[40], window_size=32, pool="max", smooth=False,
                pre_filter_ratio=0.5)(input_tensor)
"""


@pytest.mark.slow
def test_sess():
    peer, ours = migrate(SESS_SCRIPT, make_model=resnet18, rgb_img=scene())
    assert_same(peer, ours, ["sess_mean", "sess_max"])


TARGETS = """
import torch
from pytorch_grad_cam import GradCAM, ScoreCAM
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.utils.image import preprocess_image
from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget, ClassifierOutputReST, \\
    ClassifierOutputSoftmaxTarget, RawScoresOutputTarget, SoftmaxOutputTarget, SemanticSegmentationTarget

binary = make_binary()
input_tensor = preprocess_image(rgb_img, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
with GradCAM(binary, [binary.layer4]) as cam:
    positive = cam(input_tensor, [BinaryClassifierOutputTarget(1)])
    negative = cam(input_tensor, [BinaryClassifierOutputTarget(0)])
model = make_model()
with GradCAM(model, [model.layer4]) as cam:
    softmax_map = cam(input_tensor, [ClassifierOutputSoftmaxTarget(4)])
    rest_map = cam(input_tensor, [ClassifierOutputReST(4)])
maps = GradCAM(model, [model.layer4])(input_tensor, None)
raw_change = CamMultImageConfidenceChange()(input_tensor, maps, [RawScoresOutputTarget()], model)
softmax_change = CamMultImageConfidenceChange()(input_tensor, maps, [SoftmaxOutputTarget()], model)
segmentation_score = SemanticSegmentationTarget(2, mask)(torch.arange(48.0).reshape(3, 4, 4))
"""


def test_targets():
    import numpy as np

    mask = np.zeros((4, 4), dtype=np.float32)
    mask[1:3, 1:3] = 1
    peer, ours = migrate(
        TARGETS, make_model=resnet18, make_binary=lambda: resnet18(num_classes=1), rgb_img=scene(), mask=mask
    )
    names = ["positive", "negative", "softmax_map", "rest_map", "raw_change", "softmax_change", "segmentation_score"]
    assert_same(peer, ours, names)


UTILS = """
import numpy as np
import torch
from pytorch_grad_cam import ActivationsAndGradients
from pytorch_grad_cam.utils.image import scale_cam_image, scale_accross_batch_and_channels, show_cam_on_image, \\
    deprocess_image, preprocess_image
from pytorch_grad_cam.utils.find_layers import find_layer_types_recursive, find_layer_predicate_recursive, \\
    replace_all_layer_type_recursive, replace_layer_recursive
from pytorch_grad_cam.utils.reshape_transforms import vit_reshape_transform, swinT_reshape_transform, \\
    fasterrcnn_reshape_transform
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction, \\
    get_2d_projection_kernel

rng = np.random.default_rng(0)
cams = np.float32(rng.random((2, 7, 5)))
scaled = scale_cam_image(cams)
resized = scale_cam_image(cams, (20, 30))
per_channel = scale_accross_batch_and_channels(np.float32(rng.random((2, 3, 4, 4))), (8, 6))
overlays = [show_cam_on_image(rgb_img, scale_cam_image(cams, (64, 64))[0], use_rgb=rgb,
                              colormap=colormap, image_weight=weight)
            for rgb, colormap, weight in ((False, 2, 0.5), (True, 11, 0.3), (True, 20, 0.9))]
deprocessed = deprocess_image(np.float32(rng.normal(size=(8, 8, 3))))
preprocessed = preprocess_image(rgb_img)
uint8_preprocessed = preprocess_image(np.uint8(rgb_img * 255), mean=[0.4, 0.4, 0.4], std=[0.2, 0.3, 0.4])
model = make_model()
recorder = ActivationsAndGradients(model, [model.layer3, model.layer4], None)
out = recorder(preprocessed)
out[0, 3].backward()
recorded = [a.numpy() for a in recorder.activations]
gradients = [g.numpy() for g in recorder.gradients]
recorder.release()
relus = len(find_layer_types_recursive(model, [torch.nn.ReLU]))
convs = len(find_layer_predicate_recursive(model, lambda m: isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)))
replaced = replace_layer_recursive(model, model.layer4[1].conv2, torch.nn.Identity())
replace_all_layer_type_recursive(model, torch.nn.BatchNorm2d, torch.nn.Identity())
left = len(find_layer_types_recursive(model, [torch.nn.BatchNorm2d]))
tokens = torch.arange(2 * 17 * 3, dtype=torch.float32).reshape(2, 17, 3)
vit_grid = vit_reshape_transform(tokens, 4, 4)
swin_grid = swinT_reshape_transform(tokens[:, 1:], 4, 4)
fpn = {"0": torch.randn(1, 2, 8, 8), "1": torch.randn(1, 2, 4, 4), "pool": torch.randn(1, 2, 2, 2)}
fpn_grid = fasterrcnn_reshape_transform(fpn)
activations = np.float32(rng.normal(size=(2, 6, 5, 5)))
projection = get_2d_projection_with_sign_correction(activations)
kernel_projection = get_2d_projection_kernel(activations, "sigmoid", None)
"""


def test_utilities():
    peer, ours = migrate(UTILS, make_model=resnet18, rgb_img=scene())
    names = ["scaled", "resized", "per_channel", "overlays", "deprocessed", "preprocessed", "uint8_preprocessed"]
    names += ["relus", "convs", "replaced", "left", "vit_grid", "swin_grid", "fpn_grid", "projection"]
    assert_same(peer, ours, [*names, "kernel_projection", "recorded", "gradients"])


def test_refine_cam_with_statement():
    """Deliberate difference: the peer's RefineCAM has no context-manager protocol; camscope's has one."""
    script = """
from pytorch_grad_cam import RefineCAM
model = make_model()
with RefineCAM(model, [model.layer4]):
    pass
"""
    given = dict(make_model=resnet18)
    with pytest.raises(TypeError):
        run(script, PEER, given)
    run(script, OURS, given)
