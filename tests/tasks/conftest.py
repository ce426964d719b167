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
