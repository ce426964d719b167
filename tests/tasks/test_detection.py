"""Detectors natively: the list of detection dicts read by the adapter, box-score targets, the feature
pyramid as the target layer (levels joined as pytorch-grad-cam's ``fasterrcnn_reshape_transform``).

Parity: pytorch-grad-cam 1.5.7 as its Faster R-CNN tutorial runs it (EigenCAM / AblationCAM on
``model.backbone`` with ``fasterrcnn_reshape_transform``, ``FasterRCNNBoxScoreTarget``,
``AblationLayerFasterRCNN``) against camscope given the bare detector. Eigen maps are compared with the
peer's sign-corrected projection (the deliberate difference of every Eigen method).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam import AblationCAM as PeerAblationCAM
from pytorch_grad_cam import EigenCAM as PeerEigenCAM
from pytorch_grad_cam.ablation_layer import AblationLayerFasterRCNN
from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform
from torch import nn

import camscope
from camscope import AblationCAM, EigenCAM, GradCAM
from camscope.core.errors import CamscopeWarning, LayerError, TargetError
from camscope.core.outputs import Detections, read_output
from camscope.core.targets import BoxScoreTarget, ClassifierOutputTarget
from camscope.models.layers import infer_cam_layers
from camscope.models.reshape import FeaturePyramidToGrid
from tests.tasks.conftest import torchvision_task_model

SIDE = 128


def detector(name: str, side: int = SIDE, **kwargs: object) -> torch.nn.Module:
    return torchvision_task_model(name, num_classes=5, min_size=side, max_size=side, **kwargs)


@pytest.fixture(scope="module")
def faster_rcnn() -> torch.nn.Module:
    return detector("fasterrcnn_mobilenet_v3_large_fpn")


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(0))


def _detections(model: torch.nn.Module, x: torch.Tensor, keep: int = 3) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        out = model(x)[0]
    assert len(out["boxes"]) >= keep, "the random detector found too few boxes for the test"
    return {k: v[:keep] for k, v in out.items()}


def last_level_reshape(levels: dict[str, torch.Tensor]) -> torch.Tensor:
    """``fasterrcnn_reshape_transform`` with the last level for ``'pool'``, as a peer user writes it for
    RetinaNet / FCOS (whose pyramids end in 'p6', 'p7')."""
    size = list(levels.values())[-1].shape[-2:]
    return torch.cat([F.interpolate(v.abs(), size, mode="bilinear") for v in levels.values()], dim=1)


def test_adapter_reads_detections_and_layer_is_the_pyramid(faster_rcnn: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        outputs = read_output(faster_rcnn(x))
    assert isinstance(outputs, Detections) and len(outputs) == 1 and set(outputs[0]) == {"boxes", "labels", "scores"}
    layers, reshape = infer_cam_layers(faster_rcnn, (SIDE, SIDE))
    assert layers == [faster_rcnn.backbone] and isinstance(reshape, FeaturePyramidToGrid)
    with torch.no_grad():
        levels = faster_rcnn.backbone(x)
    torch.testing.assert_close(reshape(levels), fasterrcnn_reshape_transform(levels))


def test_box_score_target_is_the_peer_formula(faster_rcnn: torch.nn.Module, x: torch.Tensor) -> None:
    found = _detections(faster_rcnn, x)
    with torch.no_grad():
        output = faster_rcnn(x)[0]
    wrong_label = (found["labels"] + 1) % 5
    far_box = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    for labels, boxes in ((found["labels"], found["boxes"]), (wrong_label, found["boxes"]), ([1], far_box)):
        ours = BoxScoreTarget(labels, boxes)(output)
        peer = FasterRCNNBoxScoreTarget(labels, boxes)(output)
        torch.testing.assert_close(ours.reshape(1), peer.reshape(1))


def test_eigencam_matches_the_peer_tutorial(
    faster_rcnn: torch.nn.Module, x: torch.Tensor, sign_corrected_reference: None
) -> None:
    found = _detections(faster_rcnn, x)
    layers, reshape = infer_cam_layers(faster_rcnn, (SIDE, SIDE))
    ours = EigenCAM(faster_rcnn, layers, reshape)(x, targets=BoxScoreTarget(found["labels"], found["boxes"]))
    with PeerEigenCAM(faster_rcnn, [faster_rcnn.backbone], reshape_transform=fasterrcnn_reshape_transform) as cam:
        peer = cam(x, targets=[FasterRCNNBoxScoreTarget(found["labels"], found["boxes"])])
    assert ours.std() > 0.01
    np.testing.assert_allclose(ours, peer, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["retinanet_resnet50_fpn", "fcos_resnet50_fpn"])
def test_eigencam_on_one_stage_detectors_matches_the_peer(name: str, sign_corrected_reference: None) -> None:
    """At 256x256 their last level ('p7', stride 128) is 2x2: the joined map is not a single pixel."""
    model = detector(name, side=256, score_thresh=0.0)
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    layers, reshape = infer_cam_layers(model, (256, 256))
    assert layers == [model.backbone]
    ours = EigenCAM(model, layers, reshape)(x, targets=BoxScoreTarget(None, [[10, 10, 120, 120]]))
    with PeerEigenCAM(model, [model.backbone], reshape_transform=last_level_reshape) as cam:
        peer = cam(x, targets=[lambda output: output["scores"].sum()])
    assert ours.std() > 0.01
    np.testing.assert_allclose(ours, peer, atol=1e-4)


def small_faster_rcnn(side: int = 32) -> torch.nn.Module:
    """A Faster R-CNN whose pyramid has the five 256-channel levels ('0'..'3', 'pool') the peer's
    AblationLayerFasterRCNN is written for, cheap enough for 1,280 ablated forwards per library: a tiny
    body (strides 4, 8, 8, 8, so 'pool' is 2x2 at 32x32), 10 proposals, a 32-wide box head."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

    def stage(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU())

    torch.manual_seed(0)
    body = nn.Sequential(OrderedDict(s1=stage(3, 8, 4), s2=stage(8, 16, 2), s3=stage(16, 16, 1), s4=stage(16, 16, 1)))
    backbone = BackboneWithFPN(body, {"s1": "0", "s2": "1", "s3": "2", "s4": "3"}, [8, 16, 16, 16], 256)
    return FasterRCNN(
        backbone,
        min_size=side,
        max_size=side,
        rpn_pre_nms_top_n_test=50,
        rpn_post_nms_top_n_test=10,
        box_head=TwoMLPHead(256 * 7 * 7, 32),
        box_predictor=FastRCNNPredictor(32, 5),
    ).eval()


@pytest.mark.slow
def test_ablationcam_matches_the_peer_ablation_layer(x: torch.Tensor) -> None:
    """The peer's AblationLayerFasterRCNN sets channel k of the joined pyramid (level k // 256) to -1000;
    camscope ablates the same channels of the named maps with ablation_value=-1000."""
    model = small_faster_rcnn()
    x = x[..., :32, :32]
    found = _detections(model, x, keep=2)
    with PeerAblationCAM(
        model, [model.backbone], fasterrcnn_reshape_transform, ablation_layer=AblationLayerFasterRCNN(), batch_size=64
    ) as cam:
        peer = cam(x, targets=[FasterRCNNBoxScoreTarget(found["labels"], found["boxes"])])
    ours = AblationCAM(model, [model.backbone], FeaturePyramidToGrid(), ablation_value=-1000.0, progress=False)(
        x, targets=BoxScoreTarget(found["labels"], found["boxes"])
    )
    assert ours.std() > 0.01
    np.testing.assert_allclose(ours, peer, atol=1e-4)


def test_explain_takes_a_detector(faster_rcnn: torch.nn.Module) -> None:
    picture = (np.random.default_rng(0).random((150, 140, 3)) * 255).astype(np.uint8)
    result = camscope.explain(faster_rcnn, picture, method="eigencam", targets=BoxScoreTarget(None, [[0, 0, 60, 60]]))
    assert isinstance(result, camscope.Explanation)
    assert result.layers == ["backbone"] and result.map.shape == (SIDE, SIDE)
    assert result.top_classes and all(0 <= p <= 1 for _, _, p in result.top_classes)


def _camscope_warnings(run: Callable[[], np.ndarray]) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        maps = run()
    return maps, [str(w.message) for w in caught if isinstance(w.message, CamscopeWarning)]


def test_no_detection_warns_and_gives_a_zero_map(faster_rcnn: torch.nn.Module, x: torch.Tensor) -> None:
    """Random weights score every box ~0.2: nothing passes the default threshold (0.5)."""
    layer = faster_rcnn.backbone.fpn.layer_blocks[1]  # a tensor layer: gradients reach it from the scores
    maps, texts = _camscope_warnings(lambda: GradCAM(faster_rcnn, [layer])(x, targets=None))
    assert any("no detection scoring >= 0.5" in t for t in texts), texts
    assert np.all(maps == 0)


def test_gradients_at_the_pyramid_are_one_line_error(faster_rcnn: torch.nn.Module, x: torch.Tensor) -> None:
    found = _detections(faster_rcnn, x)
    with pytest.raises(LayerError, match="outputs named feature maps") as info:
        GradCAM(faster_rcnn, [faster_rcnn.backbone], FeaturePyramidToGrid())(
            x, targets=BoxScoreTarget(found["labels"], found["boxes"])
        )
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("labels", "boxes", "expected"),
    [
        ([], np.int32([]), "the box target has no boxes"),  # the peer tutorial's predict() when nothing passes 0.9
        ([1], [[0, 0, 2, 2]], "no detection matches its boxes and labels"),
    ],
)
def test_box_target_with_labels_that_matches_nothing_warns_and_gives_a_zero_map(
    faster_rcnn: torch.nn.Module, x: torch.Tensor, labels: list[int], boxes: object, expected: str
) -> None:
    from camscope.utils.model_targets import FasterRCNNBoxScoreTarget as PeerNamedTarget

    layer = faster_rcnn.backbone.fpn.layer_blocks[1]
    maps, texts = _camscope_warnings(lambda: GradCAM(faster_rcnn, [layer])(x, targets=[PeerNamedTarget(labels, boxes)]))
    assert any(expected in t for t in texts), texts
    assert np.all(maps == 0)


def test_classifier_target_on_a_detector_is_one_line_error(faster_rcnn: torch.nn.Module, x: torch.Tensor) -> None:
    layer = faster_rcnn.backbone.fpn.layer_blocks[1]
    with pytest.raises(TargetError, match=r"fails on a detection dict .*detections BoxScoreTarget") as info:
        GradCAM(faster_rcnn, [layer])(x, targets=[ClassifierOutputTarget(1)])
    assert "\n" not in str(info.value)
