"""Segmentation models natively: the dict output read by the adapter, class + region targets, inferred layers.

Parity: pytorch-grad-cam 1.5.7 on the same model wrapped as its tutorial does (``SegmentationModelOutputWrapper``
returning ``["out"]``, ``SemanticSegmentationTarget(category, mask)`` with the mask where the class is
predicted) against camscope given the bare model and a class index.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from pytorch_grad_cam import EigenCAM as PeerEigenCAM
from pytorch_grad_cam import GradCAM as PeerGradCAM
from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

import camscope
from camscope import AblationCAM, EigenCAM, GradCAM
from camscope.core.errors import CamscopeWarning, TargetError
from camscope.core.layer_paths import module_path as layer_name
from camscope.core.targets import ClassifierOutputTarget, SegmentationTarget
from camscope.models.layers import infer_cam_layers
from tests.tasks.conftest import OutputOf, torchvision_task_model

MODELS = [
    ("deeplabv3_mobilenet_v3_large", "backbone.16"),
    ("lraspp_mobilenet_v3_large", "backbone.16"),
    pytest.param("fcn_resnet50", "backbone.layer4", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module")
def lraspp() -> torch.nn.Module:
    return torchvision_task_model("lraspp_mobilenet_v3_large", num_classes=3)


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _predicted(model: torch.nn.Module, x: torch.Tensor) -> tuple[list[int], list[np.ndarray]]:
    """The class on most pixels of each image and its mask: what the peer's tutorial computes by hand."""
    with torch.no_grad():
        out = model(x)["out"]
    classes = [int(torch.bincount(o.argmax(0).flatten(), minlength=out.shape[1]).argmax()) for o in out]
    masks = [(o.argmax(0) == c).float().numpy() for o, c in zip(out, classes)]
    return classes, masks


@pytest.mark.parametrize(("name", "layer"), MODELS)
def test_inferred_layer_and_parity_with_peer(
    name: str, layer: str, x: torch.Tensor, sign_corrected_reference: None
) -> None:
    model = torchvision_task_model(name, num_classes=3)
    layers, reshape = infer_cam_layers(model, (64, 64))
    assert [layer_name(model, m) for m in layers] == [layer] and reshape is None
    classes, masks = _predicted(model, x)
    peer_targets = [SemanticSegmentationTarget(c, m) for c, m in zip(classes, masks)]
    for ours_cls, peer_cls in ((GradCAM, PeerGradCAM), (EigenCAM, PeerEigenCAM)):
        ours = ours_cls(model, layers)(x, targets=None)  # None: the class on most pixels, where predicted
        with peer_cls(OutputOf(model, "out"), layers) as cam:
            peer = cam(x, targets=peer_targets)
        assert ours.shape == peer.shape == (2, 64, 64)
        assert ours.std() > 0.01
        np.testing.assert_allclose(ours, peer, atol=1e-4)


def test_mask_and_box_regions_match_the_peer(lraspp: torch.nn.Module, x: torch.Tensor) -> None:
    layers = [lraspp.backbone["16"]]
    mask = np.zeros((64, 64), np.float32)
    mask[8:40, 16:48] = 1.0  # the pixels of box (16, 8, 48, 40): centres inside it
    with PeerGradCAM(OutputOf(lraspp, "out"), layers) as cam:
        peer = cam(x, targets=[SemanticSegmentationTarget(1, mask)] * 2)
    by_mask = GradCAM(lraspp, layers)(x, targets=SegmentationTarget(1, mask))
    by_box = GradCAM(lraspp, layers)(x, targets=SegmentationTarget(1, box=(16, 8, 48, 40)))
    np.testing.assert_allclose(by_mask, peer, atol=1e-4)
    np.testing.assert_allclose(by_box, peer, atol=1e-4)


def test_explain_reads_the_segmentation_output(lraspp: torch.nn.Module) -> None:
    picture = (np.random.default_rng(0).random((80, 96, 3)) * 255).astype(np.uint8)
    result = camscope.explain(lraspp, picture, method="gradcam")
    assert isinstance(result, camscope.Explanation)
    assert result.layers == ["backbone.16"]
    # the explained class is the one predicted on most pixels; top classes are pixel fractions
    assert result.target == result.top_classes[0][0]
    assert sum(p for _, _, p in result.top_classes) <= 1.0 + 1e-6
    assert result.map.shape == result.image.shape[:2]


def test_classifier_target_on_a_dense_output_is_one_line_error(lraspp: torch.nn.Module, x: torch.Tensor) -> None:
    with pytest.raises(TargetError, match=r"does not read this model's output.*SegmentationTarget") as info:
        GradCAM(lraspp, [lraspp.backbone["16"]])(x, targets=ClassifierOutputTarget(1))
    assert "\n" not in str(info.value)


def test_target_written_for_the_raw_dict_is_one_line_error(lraspp: torch.nn.Module, x: torch.Tensor) -> None:
    """The model's dict is read for the target (its 'out' scores): a target that indexes the dict itself fails."""
    with pytest.raises(TargetError, match=r"fails on an output of shape \(3, 64, 64\) \(AttributeError") as info:
        GradCAM(lraspp, [lraspp.backbone["16"]])(x, targets=lambda output: output.get("out")[1].sum())
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("wrapped", [False, True], ids=["dict-output", "tutorial-wrapper"])
def test_mask_of_the_wrong_size_is_one_line_error(lraspp: torch.nn.Module, x: torch.Tensor, wrapped: bool) -> None:
    from camscope.utils.model_targets import SemanticSegmentationTarget

    model = OutputOf(lraspp, "out") if wrapped else lraspp
    with pytest.raises(TargetError, match="mask is 32x32 but the model outputs 64x64") as info:
        GradCAM(model, [lraspp.backbone["16"]])(x, targets=SemanticSegmentationTarget(1, np.ones((32, 32))))
    assert "\n" not in str(info.value)


def test_class_predicted_nowhere_warns_and_gives_a_zero_map(lraspp: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        present = {int(c) for c in lraspp(x)["out"].argmax(1).unique()}
    absent = next(c for c in range(3) if c not in present) if len(present) < 3 else None
    if absent is None:
        pytest.fail(f"every class is predicted somewhere ({present}): pick another seed")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        maps = GradCAM(lraspp, [lraspp.backbone["16"]])(x, targets=absent)
    texts = [str(w.message) for w in caught if isinstance(w.message, CamscopeWarning)]
    assert any(f"class {absent} is predicted on no pixel" in t for t in texts), texts
    assert np.all(maps == 0)

    # Ablation-CAM runs no ablated copy for it: the target is zero whatever is ablated
    forwards: list[int] = []
    hook = lraspp.register_forward_hook(lambda module, inputs, output: forwards.append(inputs[0].shape[0]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CamscopeWarning)
            cam = AblationCAM(lraspp, [lraspp.backbone["16"]], progress=False)
            ablated = cam(x, targets=absent)
    finally:
        hook.remove()
    assert cam.last_strategy == "zero-target" and np.all(ablated == 0)
    assert forwards == [len(x)]  # the CAM's own forward alone
