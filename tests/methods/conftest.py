"""Small real models for the engine's tests: a residual CNN and a ViT with a token reshape transform."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn


class TinyResNet(nn.Module):
    """A small ResNet-like classifier: conv stem, two residual stages, global pool, linear head."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.stage1 = Block(16, 32)
        self.stage2 = Block(32, 48)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(48, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage2(self.stage1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 2, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = nn.Conv2d(cin, cout, 1, 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.down(x)
        return self.relu(out)


def _randomise_bn(model: nn.Module, seed: int) -> None:
    """Non-trivial batch-norm statistics, so FullGrad's effective biases are not all zero."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def token_reshape(num_prefix: int, grid: tuple[int, int]):
    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        x = tokens[:, num_prefix:, :]
        x = x.reshape(x.shape[0], grid[0], grid[1], x.shape[-1])
        return x.permute(0, 3, 1, 2)

    return reshape


@pytest.fixture(scope="session")
def cnn() -> nn.Module:
    torch.manual_seed(0)
    model = TinyResNet().eval()
    _randomise_bn(model, 0)
    return model


@pytest.fixture(scope="session")
def cnn_input() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="session")
def vit() -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        img_size=32,
        patch_size=8,
        embed_dim=48,
        depth=2,
        num_heads=3,
        num_classes=10,
    ).eval()


@pytest.fixture(scope="session")
def vit_input() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="session")
def vit_reshape():
    return token_reshape(1, (4, 4))
