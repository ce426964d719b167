"""Tiny random-weight task models (segmentation, detection, Hugging Face), built once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True, scope="package")
def _one_thread(one_torch_thread: None) -> Iterator[None]:
    yield


def torchvision_task_model(name: str, **kwargs: object) -> nn.Module:
    """A torchvision segmentation/detection model with random weights and no backbone download."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None, weights_backbone=None, **kwargs).eval()


class OutputOf(nn.Module):
    """pytorch-grad-cam's tutorial wrappers: the model's output read by hand (``["out"]``, ``.logits``)."""

    def __init__(self, model: nn.Module, key: str) -> None:
        super().__init__()
        self.model = model
        self.key = key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.model(x)
        return output[self.key] if self.key == "out" else getattr(output, self.key)


@pytest.fixture
def sign_corrected_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytorch-grad-cam's Eigen methods with its own sign-corrected projection: camscope fixes the sign of the
    principal component (|max| >= |min|), a deliberate difference (tests/methods/test_parity.py)."""
    from pytorch_grad_cam import base_cam, eigen_cam
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction

    for module in (base_cam, eigen_cam):
        monkeypatch.setattr(module, "get_2d_projection", get_2d_projection_with_sign_correction)


def seeing_detector(side: int) -> nn.Module:
    """A random-weight Faster R-CNN (MobileNet-v3 FPN, 5 classes) whose detections depend on the image.

    Why: built with random weights its backbone's features vanish (std ~1e-9 at the pyramid), so every
    image gets the same scores and a metric's curve is flat whatever the map. Its batch-norm statistics
    are set from seeded random images (a data-dependent initialisation), and its class head scaled down so
    that scores stay off saturation; all seeded, nothing downloaded.
    """
    model = torchvision_task_model("fasterrcnn_mobilenet_v3_large_fpn", num_classes=5, min_size=side, max_size=side)
    for norm in model.modules():
        if isinstance(norm, nn.BatchNorm2d):
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average: the statistics of exactly the images below
    model.backbone.train()
    with torch.no_grad():
        model.backbone(torch.rand(4, 3, side, side, generator=torch.Generator().manual_seed(5)))
        model.roi_heads.box_predictor.cls_score.weight.mul_(0.02)
    return model.eval()
