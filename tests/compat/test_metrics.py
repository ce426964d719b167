"""Migration: the peer's "CAM Metrics And Tuning" tutorial and its README metric snippet (CamMult, ROAD, ARCC,
the Sobel baseline), on a random-weight ResNet-18."""

from __future__ import annotations

import pytest

from camscope.core.errors import TargetError
from tests.compat.helpers import OURS, PEER, assert_same, migrate, resnet18, run, scene

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SETUP = """
import cv2
import numpy as np
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget, ClassifierOutputSoftmaxTarget
from pytorch_grad_cam.utils.image import show_cam_on_image, deprocess_image, preprocess_image

model = make_model()
img = rgb_img
input_tensor = preprocess_image(img, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
targets = [ClassifierOutputTarget(295)]
target_layers = [model.layer4]
with GradCAM(model=model, target_layers=target_layers) as cam:
    grayscale_cams = cam(input_tensor=input_tensor, targets=targets)
    cam_image = show_cam_on_image(img, grayscale_cams[0, :], use_rgb=True)
"""

CAM_MULT = (
    SETUP
    + """
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange, DropInConfidence, IncreaseInConfidence
from pytorch_grad_cam.sobel_cam import sobel_cam

targets = [ClassifierOutputSoftmaxTarget(295)]
cam_metric = CamMultImageConfidenceChange()
scores, visualizations = cam_metric(input_tensor, grayscale_cams, targets, model, return_visualization=True)
visualization = deprocess_image(visualizations[0].cpu().numpy().transpose((1, 2, 0)))
drop = DropInConfidence()(input_tensor, grayscale_cams, targets, model)
increase = IncreaseInConfidence()(input_tensor, grayscale_cams, targets, model)
inverse_scores = CamMultImageConfidenceChange()(input_tensor, 1 - grayscale_cams, targets, model)
thresholded_cam = grayscale_cams < np.percentile(grayscale_cams, 75)
threshold_scores = CamMultImageConfidenceChange()(input_tensor, thresholded_cam, targets, model)
sobel_cam_grayscale = sobel_cam(np.uint8(img * 255))
sobel_thresholded = sobel_cam_grayscale < np.percentile(sobel_cam_grayscale, 75)
sobel_scores, sobel_visualizations = cam_metric(input_tensor, [sobel_thresholded], targets, model,
                                                return_visualization=True)
"""
)


def test_cam_mult_image_metrics_and_sobel_baseline():
    peer, ours = migrate(CAM_MULT, make_model=resnet18, rgb_img=scene())
    names = ["grayscale_cams", "cam_image", "scores", "visualizations", "visualization", "drop", "increase"]
    names += ["inverse_scores", "threshold_scores", "sobel_cam_grayscale", "sobel_scores", "sobel_visualizations"]
    assert_same(peer, ours, names, colored={"cam_image": "grayscale_cams"})


ROAD = (
    SETUP
    + """
from pytorch_grad_cam.metrics.road import ROADMostRelevantFirst, ROADLeastRelevantFirst, \\
    ROADMostRelevantFirstAverage, ROADLeastRelevantFirstAverage, ROADCombined

targets = [ClassifierOutputSoftmaxTarget(295)]
cam_metric = ROADMostRelevantFirst(percentile=75)
scores_75, visualizations = cam_metric(input_tensor, grayscale_cams, targets, model, return_visualization=True)
visualization_75 = deprocess_image(visualizations[0].cpu().numpy().transpose((1, 2, 0)))
scores_lerf, _ = ROADLeastRelevantFirst(percentile=90)(input_tensor, grayscale_cams, targets, model,
                                                       return_visualization=True)
average_morf = ROADMostRelevantFirstAverage(percentiles=[20, 40, 60, 80])(input_tensor, grayscale_cams, targets, model)
average_lerf = ROADLeastRelevantFirstAverage(percentiles=[20, 40, 60, 80])(input_tensor, grayscale_cams, targets, model)
combined = ROADCombined(percentiles=[20, 40, 60, 80])(input_tensor, grayscale_cams, targets, model)
empty = ROADCombined(percentiles=[20, 40, 60, 80])(input_tensor, grayscale_cams * 0, targets, model)
otsu = ROADMostRelevantFirst(percentile="auto")(input_tensor, grayscale_cams, targets, model)
"""
)


@pytest.mark.slow
def test_road_classes():
    peer, ours = migrate(ROAD, make_model=resnet18, rgb_img=scene())
    names = ["scores_75", "visualizations", "visualization_75", "scores_lerf", "average_morf", "average_lerf"]
    assert_same(peer, ours, [*names, "combined", "empty", "otsu"])


BENCHMARK = (
    SETUP
    + """
from pytorch_grad_cam import GradCAMPlusPlus, EigenGradCAM, AblationCAM
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.metrics.arcc import ARCC

def benchmark(input_tensor, target_layers, eigen_smooth=False, aug_smooth=False, category=281):
    methods = [("GradCAM", GradCAM(model=model, target_layers=target_layers)),
               ("GradCAM++", GradCAMPlusPlus(model=model, target_layers=target_layers)),
               ("EigenGradCAM", EigenGradCAM(model=model, target_layers=target_layers))]
    cam_metric = ROADCombined(percentiles=[20, 40, 60, 80])
    targets = [ClassifierOutputTarget(category)]
    metric_targets = [ClassifierOutputSoftmaxTarget(category)]
    visualizations, scores = [], []
    for name, cam_method in methods:
        with cam_method:
            attributions = cam_method(input_tensor=input_tensor, targets=targets, eigen_smooth=eigen_smooth,
                                      aug_smooth=aug_smooth)
        scores.append(cam_metric(input_tensor, attributions, metric_targets, model)[0])
        visualization = show_cam_on_image(img, attributions[0, :], use_rgb=True)
        visualizations.append(cv2.putText(visualization, f"{scores[-1]:.5f}", (10, 20),
                                          cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA))
    return np.float32(scores), np.hstack(visualizations)

np.random.seed(42)
road_scores, grid = benchmark(input_tensor, [model.layer4[-2]])
arcc_score = ARCC(base_method=GradCAM(model=model, target_layers=target_layers))(
    input_tensor, grayscale_cams, [ClassifierOutputSoftmaxTarget(295)], model)
"""
)


@pytest.mark.slow
def test_tutorial_benchmark_and_arcc(sign_corrected_peer):
    peer, ours = migrate(BENCHMARK, make_model=resnet18, rgb_img=scene())
    assert_same(peer, ours, ["road_scores", "arcc_score"])
    assert peer["grid"].shape == ours["grid"].shape


ONE_TARGET = """
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.utils.image import preprocess_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

model = make_model()
batch = torch.cat([preprocess_image(rgb_img), preprocess_image(other_img)])
targets = [ClassifierOutputTarget(7)]
maps = GradCAM(model, [model.layer4])(batch, targets)
change = CamMultImageConfidenceChange()(batch, maps, targets, model)
"""


def test_one_target_listed_for_a_batch():
    """Deliberate difference: the peer zips targets with images, so ``[target]`` for a batch of two explains and
    scores image 0 only (its map of image 1 is all zeros, its metric returns one score); camscope refuses a
    list of the wrong length with one clear error, and applies a single target (not in a list) to every image."""
    given = dict(make_model=resnet18, rgb_img=scene(seed=0), other_img=scene(seed=3))
    peer = run(ONE_TARGET, PEER, given)
    assert not peer["maps"][1].any() and peer["change"].shape == (1,)
    with pytest.raises(TargetError, match="1 targets for a batch of 2"):
        run(ONE_TARGET, OURS, given)
    ours = run(
        ONE_TARGET.replace("targets = [ClassifierOutputTarget(7)]", "targets = ClassifierOutputTarget(7)"), OURS, given
    )
    assert ours["maps"][1].max() == pytest.approx(1.0) and ours["change"].shape == (2,)
    assert abs(peer["maps"][0] - ours["maps"][0]).max() <= 1e-4
    assert abs(peer["change"][0] - ours["change"][0]) <= 1e-4
