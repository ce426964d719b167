"""MoCo v3 (Chen, Xie, He, ICCV 2021): contrastive learning with a momentum encoder, at mini scale.

Two augmented views of each image go through the base encoder + projector + predictor (queries)
and through a momentum copy of encoder + projector (keys). Each query must pick out the key of its
own image among the batch's keys: InfoNCE ``2τ · CE(q·kᵀ/τ, diag)``, symmetrised over the two views
(``ctr(q1, k2) + ctr(q2, k1)``). The predictor and the slowly moving keys prevent collapse. After
training the *base* encoder is evaluated (as in MoCo v3's ``main_lincls.py``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from camscope.models import mini_archs as backbones
from camscope_lab.augment import CropSpec, views
from camscope_lab.ssl_common import cosine_momentum, ema_update, mlp, momentum_copy

PAIR = CropSpec(2, 64, (0.35, 1.0))


class MocoV3(nn.Module):
    """Base encoder = ``backbone`` + projector + predictor; momentum encoder = copy of backbone + projector."""

    def __init__(
        self,
        backbone: nn.Module,
        dim: int = 128,
        hidden: int = 256,
        temperature: float = 0.2,
        base_momentum: float = 0.99,
        crop: CropSpec = PAIR,
    ) -> None:
        super().__init__()
        self.base = backbone
        self.projector = mlp((backbones.embed_dim(backbone), hidden, hidden, dim), last_bn=True)
        self.predictor = mlp((dim, hidden, dim))
        self.momentum_encoder = momentum_copy(backbone)
        self.momentum_projector = momentum_copy(self.projector)
        self.temperature, self.base_momentum, self.crop = temperature, base_momentum, crop

    def backbones(self) -> tuple[nn.Module, nn.Module]:
        """Every copy of the backbone (trained, momentum): what a warm start from a model file loads."""
        return self.base, self.momentum_encoder

    def trainable_parameters(self) -> list[nn.Parameter]:
        head = set(map(id, backbones.head_of(self.base).parameters()))  # the classifier is the probe's
        rest = list(self.projector.parameters()) + list(self.predictor.parameters())
        return [p for p in self.base.parameters() if id(p) not in head] + rest

    def _contrastive(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        logits = q @ k.T / self.temperature
        return F.cross_entropy(logits, torch.arange(len(q))) * 2 * self.temperature

    def loss(self, images: torch.Tensor, progress: float, g: torch.Generator) -> torch.Tensor:
        v1, v2 = views(images, (self.crop,), g)
        both = torch.cat([v1, v2])
        q1, q2 = self.predictor(self.projector(backbones.features(self.base, both))).chunk(2)
        with torch.no_grad():
            k1, k2 = self.momentum_projector(backbones.features(self.momentum_encoder, both)).chunk(2)
        return self._contrastive(q1, k2) + self._contrastive(q2, k1)

    def update_momentum(self, progress: float) -> None:
        m = cosine_momentum(self.base_momentum, progress)
        ema_update(self.momentum_encoder, self.base, m)
        ema_update(self.momentum_projector, self.projector, m)

    def evaluated_backbone(self) -> nn.Module:
        """MoCo v3 evaluates the base encoder."""
        return self.base

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "method": "MoCo v3",
            "projector": "3-layer MLP, BN, 256 -> 128",
            "predictor": "2-layer MLP, 256 -> 128",
            "temperature": self.temperature,
            "encoder_momentum": f"{self.base_momentum} -> 1 (cosine)",
            "crops": f"{self.crop.count}x{self.crop.size}px scale {self.crop.scale}",
            "evaluated": "base encoder",
        }
