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
from camscope.methods.ablation_detector_tail import DetectorTail, build_detector_tail
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
    assert read_output(outputs) is outputs  # outputs already read pass through (a memo's stored rows)
    layers, reshape = infer_cam_layers(faster_rcnn, (SIDE, SIDE))
    assert layers == [faster_rcnn.backbone] and isinstance(reshape, FeaturePyramidToGrid)
    with torch.no_grad():
        levels = faster_rcnn.backbone(x)
    torch.testing.assert_close(reshape(levels), fasterrcnn_reshape_transform(levels))


def test_the_pyramid_named_as_a_layer_is_joined_as_inferred(faster_rcnn: torch.nn.Module, x: torch.Tensor) -> None:
    """``layers=["backbone"]`` (the peer tutorial's target layer, by name) gets the levels joined, as the inferred
    layer does; it was refused as 'not used in the forward pass' (its output is a dict, not a tensor)."""
    from camscope.models.layers import cam_layers_from_names

    layers, reshape = cam_layers_from_names(faster_rcnn, ["backbone"], (SIDE, SIDE))
    assert layers == [faster_rcnn.backbone] and reshape == FeaturePyramidToGrid()
    picture = (x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CamscopeWarning)  # random weights: nothing confident (Eigen-CAM needs none)
        named = camscope.explain(faster_rcnn, picture, "eigencam", layers=["backbone"])
        inferred = camscope.explain(faster_rcnn, picture, "eigencam")
    assert isinstance(named, camscope.Explanation) and isinstance(inferred, camscope.Explanation)
    assert named.layers == ["backbone"] and named.map.std() > 0.01
    np.testing.assert_array_equal(named.map, inferred.map)
    with pytest.raises(LayerError, match="outputs a tuple, neither a tensor nor named feature maps"):
        cam_layers_from_names(faster_rcnn, ["rpn"], (SIDE, SIDE))


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


def small_faster_rcnn(side: int = 32, channels: int = 256) -> torch.nn.Module:
    """A Faster R-CNN whose pyramid has the five 256-channel levels ('0'..'3', 'pool') the peer's
    AblationLayerFasterRCNN is written for, cheap enough for 1,280 ablated forwards per library: a tiny
    body (strides 4, 8, 8, 8, so 'pool' is 2x2 at 32x32), 10 proposals, a 32-wide box head.
    ``channels`` narrows the pyramid (the peer's layer needs 256) for tests of camscope alone."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

    def stage(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU())

    torch.manual_seed(0)
    body = nn.Sequential(OrderedDict(s1=stage(3, 8, 4), s2=stage(8, 16, 2), s3=stage(16, 16, 1), s4=stage(16, 16, 1)))
    backbone = BackboneWithFPN(body, {"s1": "0", "s2": "1", "s3": "2", "s4": "3"}, [8, 16, 16, 16], channels)
    return FasterRCNN(
        backbone,
        min_size=side,
        max_size=side,
        rpn_pre_nms_top_n_test=50,
        rpn_post_nms_top_n_test=10,
        box_head=TwoMLPHead(channels * 7 * 7, 32),
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
    cam = AblationCAM(model, [model.backbone], FeaturePyramidToGrid(), ablation_value=-1000.0, progress=False)
    ours = cam(x, targets=BoxScoreTarget(found["labels"], found["boxes"]))
    assert cam.last_strategy == "detector-heads"
    assert ours.std() > 0.01
    np.testing.assert_allclose(ours, peer, atol=1e-4)


@pytest.fixture(scope="module")
def narrow_rcnn() -> torch.nn.Module:
    """Five 16-channel levels: 80 channels to ablate, so full forwards stay cheap enough for a fast test."""
    return small_faster_rcnn(channels=16)


def _ablation_maps(model: nn.Module, x: torch.Tensor, **kwargs: object) -> tuple[np.ndarray, AblationCAM]:
    found = _detections(model, x, keep=2)
    cam = AblationCAM(model, [model.backbone], FeaturePyramidToGrid(), ablation_value=-1000.0, progress=False, **kwargs)
    return cam(x, targets=BoxScoreTarget(found["labels"], found["boxes"])), cam


def _tail_of(model: nn.Module, x: torch.Tensor) -> DetectorTail | None:
    """The heads-only tail built for image ``x`` from the model's own detections and pyramid of it."""
    with torch.inference_mode():
        found, levels = model(x)[0], model.backbone(model.transform([x[0]])[0].tensors)
        return build_detector_tail(model, "backbone", x, levels, found)


def _assert_full_forward_maps(
    model: nn.Module, x: torch.Tensor, heads: np.ndarray, cam: AblationCAM, **kwargs: object
) -> None:
    """``heads`` (the maps ``cam`` computed with the heads-only tail) are the maps of full forward passes."""
    full, slow = _ablation_maps(model, x, use_tail=False, **kwargs)
    assert cam.last_strategy == "detector-heads" and slow.last_strategy == "full-forward"
    assert heads.std() > 0.01
    np.testing.assert_allclose(heads, full, atol=1e-5)


@pytest.mark.parametrize("batch_size", [64, 12])
def test_detector_heads_give_the_full_forward_maps(
    narrow_rcnn: torch.nn.Module, x: torch.Tensor, batch_size: int
) -> None:
    """Only the heads run per ablated copy (the transform once, a level untouched in a batch scored once
    by the RPN head); the maps are those of full forward passes. Batches of 12 cross the 16-channel
    levels, so some batches ablate two levels."""
    x = x[..., :32, :32]
    heads, fast = _ablation_maps(narrow_rcnn, x, batch_size=batch_size)
    _assert_full_forward_maps(narrow_rcnn, x, heads, fast, batch_size=batch_size)


def test_detector_heads_score_an_untouched_level_once_per_image(narrow_rcnn: torch.nn.Module, x: torch.Tensor) -> None:
    """Batches of 16 ablate one 16-channel level each and leave four alone: the RPN head's convolution
    runs on one copy of each untouched level once per image, not once per batch."""
    single_rows: list[int] = []
    hook = narrow_rcnn.rpn.head.conv.register_forward_hook(
        lambda module, inputs, output: single_rows.append(1) if inputs[0].shape[0] == 1 else None
    )
    try:
        _, cam = _ablation_maps(narrow_rcnn, x[..., :32, :32], batch_size=16)
    finally:
        hook.remove()
    assert cam.last_strategy == "detector-heads"
    levels = 5
    # batch-1 passes of each level: the detections for the target, camscope's forward, then each level once, in
    # the check that the head scores level by level (once per batch would be 4 of 5 levels in each of 5 batches)
    assert len(single_rows) == 3 * levels


class _LevelMixingHead(nn.Module):
    """An RPN head whose scores of each level depend on the other levels: it cannot run level by level."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, levels: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        logits, deltas = self.head(levels)
        total = torch.stack([level.abs().mean(dim=(1, 2, 3)) for level in levels]).sum(0)
        return logits, [t + total[:, None, None, None] for t in deltas]  # every proposal moves with it


def test_detector_heads_score_whole_copies_for_a_head_that_mixes_levels(x: torch.Tensor) -> None:
    model = small_faster_rcnn(channels=16)
    model.rpn.head = _LevelMixingHead(model.rpn.head)
    x = x[..., :32, :32]
    tail = _tail_of(model, x)
    assert tail is not None and not tail.per_level
    _assert_full_forward_maps(model, x, *_ablation_maps(model, x))


def small_one_stage(kind: str, side: int = SIDE, channels: int = 32) -> torch.nn.Module:
    """A RetinaNet or FCOS on a tiny body: five ``channels``-wide levels ('0'..'2', 'p6', 'p7', the torchvision
    builders' layout; 'p7' is 2x2 at 128x128; FCOS's group norm needs 32 channels). Every anchor is kept
    (score_thresh 0): the random head starts at the class prior (scores ~0.01), under the builders' thresholds."""
    from torchvision.models.detection import FCOS, RetinaNet
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    def stage(cin: int, cout: int, stride: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU())

    torch.manual_seed(0)
    body = nn.Sequential(OrderedDict(s1=stage(3, 8, 4), s2=stage(8, 16, 2), s3=stage(16, 16, 2)))
    backbone = BackboneWithFPN(
        body, {"s1": "0", "s2": "1", "s3": "2"}, [8, 16, 16], channels, extra_blocks=LastLevelP6P7(channels, channels)
    )
    build = {"retinanet": RetinaNet, "fcos": FCOS}[kind]
    model = build(backbone, 5, min_size=side, max_size=side, score_thresh=0.0, detections_per_img=20).eval()
    if kind == "fcos":  # its random box distances are ~0 (flat boxes, which match nothing): one anchor size each way
        torch.nn.init.constant_(model.head.regression_head.bbox_reg.bias, 1.0)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["retinanet", "fcos"])
def test_one_stage_detector_heads_give_the_full_forward_maps(kind: str, x: torch.Tensor) -> None:
    """A one-stage detector's whole head scores each level on its own: batches of 32 ablate one of the five
    32-channel levels and leave four alone, each scored on one copy once per image; the maps are those of
    full forward passes."""
    model = small_one_stage(kind)
    tail = _tail_of(model, x)
    assert tail is not None and tail.per_level
    single_levels: list[int] = []
    hook = model.head.classification_head.register_forward_hook(
        lambda module, inputs, output: single_levels.append(1) if inputs[0][0].shape[0] == 1 else None
    )
    try:
        heads, fast = _ablation_maps(model, x, batch_size=32)
    finally:
        hook.remove()
    _assert_full_forward_maps(model, x, heads, fast, batch_size=32)
    # batch-1 head calls: the target's detections and camscope's forward (all levels at once), then each level
    # once, in the check that the head scores level by level: every batch reuses those scores
    assert len(single_levels) == 2 + 5


class _TwoLevels(nn.Module):
    """An SSD backbone: two named maps of 16 channels (8x8 and 4x4 at 32x32)."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Sequential(nn.Conv2d(3, 16, 3, 4, 1), nn.ReLU())
        self.second = nn.Sequential(nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        first = self.first(x)
        return OrderedDict([("0", first), ("1", self.second(first))])


def test_ssd_heads_score_whole_copies(x: torch.Tensor) -> None:
    """SSD's head has its own layers for each level, so it cannot score one level alone: the check of the
    level-by-level tail fails and whole copies go through the heads (still without transform or backbone)."""
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD

    torch.manual_seed(0)
    model = SSD(_TwoLevels(), DefaultBoxGenerator([[2], [2]]), (32, 32), 5, detections_per_img=20).eval()
    x = x[..., :32, :32]
    tail = _tail_of(model, x)
    assert tail is not None and not tail.per_level
    _assert_full_forward_maps(model, x, *_ablation_maps(model, x))


def test_detector_heads_only_at_the_backbone_of_an_eval_two_stage_detector(
    narrow_rcnn: torch.nn.Module, x: torch.Tensor
) -> None:
    x = x[..., :32, :32]
    with torch.inference_mode():
        found, levels = narrow_rcnn(x)[0], narrow_rcnn.backbone(narrow_rcnn.transform([x[0]])[0].tensors)
        assert build_detector_tail(narrow_rcnn, "backbone", x, levels, found) is not None
        assert build_detector_tail(narrow_rcnn, "backbone.fpn", x, levels, found) is None
        wrong = {**found, "scores": found["scores"] + 0.1}  # not what the heads give: no tail
        assert build_detector_tail(narrow_rcnn, "backbone", x, levels, wrong) is None


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


def test_ablation_runs_nothing_for_an_image_whose_box_target_has_no_box(narrow_rcnn: torch.nn.Module) -> None:
    """No detection passes the threshold in image 0: its target is zero whatever is ablated, so none of its
    80 channels is run (a real detector at full size would spend minutes on it); image 1 is ablated as usual."""
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    found = _detections(narrow_rcnn, x[1:], keep=2)
    targets = [BoxScoreTarget([], []), BoxScoreTarget(found["labels"], found["boxes"])]
    heads: list[int] = []
    hook = narrow_rcnn.rpn.head.register_forward_hook(lambda module, inputs, output: heads.append(1))
    cam = AblationCAM(
        narrow_rcnn, [narrow_rcnn.backbone], FeaturePyramidToGrid(), ablation_value=-1000.0, progress=False
    )
    try:
        maps, texts = _camscope_warnings(lambda: cam(x, targets=targets))
        alone, _ = _ablation_maps(narrow_rcnn, x[1:])
        calls_alone = len(heads)
        cam(x[:1], targets=targets[:1])
    finally:
        hook.remove()
    assert any("no boxes" in t for t in texts), texts
    assert np.all(maps[0] == 0) and maps[1].std() > 0.01
    np.testing.assert_allclose(maps[1], alone[0], atol=1e-5)
    assert cam.last_strategy == "zero-target"
    assert len(heads) == calls_alone + 1  # image 0 alone: the CAM's own forward, no ablation


def test_an_explanation_draws_the_boxes_it_explains_in_either_view() -> None:
    """Boxes are in the model input's pixels; on the original image they go back through the crop and resize."""
    from camscope.api import Explanation

    def explained(scored: object) -> Explanation:
        return Explanation(
            map=np.zeros((8, 8), np.float32),
            image=np.zeros((8, 8, 3), np.uint8),
            target=None,
            top_classes=[],
            method="eigencam",
            layers=["backbone"],
            original=np.zeros((16, 24, 3), np.uint8),
            geometry=(8, 8),  # 16x24 -> 8x12 -> the middle 8x8: the input's x = original x / 2 - 2
            scored=scored,
        )

    box = BoxScoreTarget([1], [[1, 1, 3, 3]])
    on_input = explained(box).overlay(view="input").all(axis=2)
    assert on_input[1, 1:3].all() and on_input[1:3, 1].all()
    plain = explained(None).overlay().all(axis=2)
    on_original = explained(box).overlay().all(axis=2) & ~plain  # beside the crop's own white outline
    assert on_original[2, 6:10].all() and on_original[2:6, 6].all() and on_original[5, 6:10].all()
    assert on_original.sum() == 12  # the box's outline alone: (6, 2)-(10, 6) in the original's pixels
    assert np.array_equal(explained(BoxScoreTarget([], [])).overlay(), explained(None).overlay())


def test_gradients_at_the_pyramid_are_one_line_error(faster_rcnn: torch.nn.Module, x: torch.Tensor) -> None:
    found = _detections(faster_rcnn, x)
    with pytest.raises(LayerError, match="outputs named feature maps") as info:
        GradCAM(faster_rcnn, [faster_rcnn.backbone], FeaturePyramidToGrid())(
            x, targets=BoxScoreTarget(found["labels"], found["boxes"])
        )
    assert "\n" not in str(info.value)
    hinted = "backbone.fpn.layer_blocks.0"  # the one-level layer the message names: gradients reach it
    assert f"e.g. {hinted})" in str(info.value)
    maps = GradCAM(faster_rcnn, [hinted])(x, targets=BoxScoreTarget(found["labels"], found["boxes"]))
    assert maps.shape == (1, SIDE, SIDE) and maps.std() > 0


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
