"""Small models whose answers are known by construction."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class RegionBrightness(nn.Module):
    """Two logits: ``[gain · mean(x over rows r0:r1, cols c0:c1, all channels), 0]``.

    Its softmax probability of class 0 is ``sigmoid(gain · mean)``, so every perturbation curve can be
    computed by hand. It records the batch sizes it sees and whether inference mode was on.
    """

    def __init__(self, region: tuple[int, int, int, int] = (0, 4, 0, 4), gain: float = 4.0) -> None:
        super().__init__()
        self.region = region
        self.gain = gain
        self.batches: list[int] = []
        self.inference: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.shape[0])
        self.inference.append(torch.is_inference_mode_enabled())
        r0, r1, c0, c1 = self.region
        mean = x[:, :, r0:r1, c0:c1].mean(dim=(1, 2, 3))
        return torch.stack([self.gain * mean, torch.zeros_like(mean)], dim=1)


def tiny_cnn(num_classes: int = 5) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(128, num_classes),
    ).eval()


@pytest.fixture
def region_model() -> RegionBrightness:
    return RegionBrightness()


@pytest.fixture
def cnn() -> nn.Module:
    return tiny_cnn()


@pytest.fixture
def make_cnn():
    return tiny_cnn
