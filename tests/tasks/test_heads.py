"""Binary (single-logit) and multi-label heads: the target policy and the peer's BinaryClassifierOutputTarget."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM as PeerGradCAM
from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget
from torch import nn

from camscope import GradCAM
from camscope.core.errors import TargetError
from camscope.core.targets import BinaryTarget, ClassifierOutputTarget, MultiLabelTarget, resolve_targets


def tiny_cnn(outputs: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, outputs),
    ).eval()  # fmt: skip


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_binary_head_explains_the_predicted_side_as_the_peer(x: torch.Tensor) -> None:
    model = tiny_cnn(1)
    with torch.no_grad():
        middle = model(x)[:, 0].sort().values[1:3].mean()
        model[-1].bias -= middle  # logits centred on 0 between the middle two: both sides in the batch
        sides = (model(x)[:, 0] > 0).long().tolist()
    assert len(set(sides)) == 2, "the batch should hold both predictions"
    resolved = resolve_targets(None, model(x).detach())
    assert [t.category for t in resolved] == sides and all(isinstance(t, BinaryTarget) for t in resolved)
    ours = GradCAM(model, [model[2]])(x)
    with PeerGradCAM(model, [model[2]]) as cam:
        peer = cam(x, targets=[BinaryClassifierOutputTarget(s) for s in sides])
    np.testing.assert_allclose(ours, peer, atol=1e-4)
    with pytest.raises(TargetError, match="classes 0 and 1"):
        GradCAM(model, [model[2]])(x, targets=2)


def test_multilabel_target_is_the_sum_of_its_classes(x: torch.Tensor) -> None:
    """Grad-CAM's channel weights are linear in the score: the sum's map equals the map of the summed logits."""
    model = tiny_cnn(5)
    summed = GradCAM(model, [model[2]])(x, targets=MultiLabelTarget([1, 3]))
    by_hand = GradCAM(model, [model[2]])(x, targets=lambda out: out[1] + out[3])
    np.testing.assert_allclose(summed, by_hand, atol=1e-6)
    assert not np.allclose(summed, GradCAM(model, [model[2]])(x, targets=ClassifierOutputTarget(1)))
    with pytest.raises(TargetError, match="out of range"):
        GradCAM(model, [model[2]])(x, targets=MultiLabelTarget([7]))
