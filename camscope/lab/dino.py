"""DINO (Caron et al., ICCV 2021): self-distillation with no labels, at mini scale.

A student network matches the output distribution of a momentum teacher across views: the teacher
sees only the two global crops, the student all crops (2 global + several small local ones:
multi-crop), so the student learns that a part of the scene predicts what the whole looks like.
Collapse is avoided by *centering* the teacher's logits (an EMA of their batch mean is subtracted)
and *sharpening* them (a low teacher temperature); the loss is the cross-entropy
``−Σ softmax((t − c)/τ_t) · log softmax(s/τ_s)`` over all pairs of different views.
After training the *teacher* backbone is the one evaluated (as in DINO's linear evaluation).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from camscope.lab.augment import CropSpec, views
from camscope.lab.ssl_common import cosine_momentum, ema_update, mlp, momentum_copy
from camscope.models import mini_archs as backbones

GLOBAL_SCALE = (0.4, 1.0)  # area fraction of DINO's global crops (its default)


def multi_crop(size: int = 64, scale: tuple[float, float] = GLOBAL_SCALE, local: int = 2) -> tuple[CropSpec, ...]:
    """DINO's crops: two global ones of ``size`` px, and ``local`` crops of half the side covering 10 % up to
    the global crops' smallest area. The one definition of the layout, for the default and every config."""
    return CropSpec(2, size, scale), CropSpec(local, size // 2, (0.1, scale[0]))


class DinoHead(nn.Module):
    """MLP to a bottleneck, then cosine similarity with ``out_dim`` prototypes (weight-normalised, g = 1)."""

    def __init__(self, dim: int, out_dim: int = 512, hidden: int = 256, bottleneck: int = 64) -> None:
        super().__init__()
        self.mlp = mlp((dim, hidden, hidden, bottleneck))
        self.prototypes = nn.Parameter(torch.randn(out_dim, bottleneck) * 0.02)

    def forward(self, x: torch.Tensor, freeze_prototypes: bool = False) -> torch.Tensor:
        prototypes = self.prototypes.detach() if freeze_prototypes else self.prototypes
        return F.linear(F.normalize(self.mlp(x), dim=-1), F.normalize(prototypes, dim=-1))


class Dino(nn.Module):
    """Student = ``backbone`` + head; teacher = momentum copy of both."""

    def __init__(
        self,
        backbone: nn.Module,
        out_dim: int = 512,
        student_temp: float = 0.1,
        teacher_temp: float = 0.04,
        center_momentum: float = 0.9,
        base_momentum: float = 0.99,
        crops: tuple[CropSpec, ...] = multi_crop(),
        freeze_last_layer: float = 0.0,
    ) -> None:
        super().__init__()
        self.student = backbone
        self.student_head = DinoHead(backbones.embed_dim(backbone), out_dim)
        self.teacher = momentum_copy(backbone)
        self.teacher_head = momentum_copy(self.student_head)
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.student_temp, self.teacher_temp = student_temp, teacher_temp
        self.center_momentum, self.base_momentum = center_momentum, base_momentum
        self.crops = crops
        self.freeze_last_layer = freeze_last_layer  # fraction of training with the prototypes held still

    def backbones(self) -> tuple[nn.Module, nn.Module]:
        """Every copy of the backbone (trained, momentum): what a warm start from a model file loads."""
        return self.student, self.teacher

    def trainable_parameters(self) -> list[nn.Parameter]:
        head = set(map(id, backbones.head_of(self.student).parameters()))  # the classifier is the probe's
        return [p for p in self.student.parameters() if id(p) not in head] + list(self.student_head.parameters())

    def _forward(
        self, net: nn.Module, head: DinoHead, crops: list[torch.Tensor], freeze: bool = False
    ) -> list[torch.Tensor]:
        """Same-size crops go through the backbone together (as DINO batches them)."""
        out: list[torch.Tensor] = []
        start = 0
        for spec in self.crops:
            group = crops[start : start + spec.count]
            if not group:
                break
            out += head(backbones.features(net, torch.cat(group)), freeze).chunk(len(group))
            start += spec.count
        return out

    def loss(self, images: torch.Tensor, progress: float, g: torch.Generator) -> torch.Tensor:
        crops = views(images, self.crops, g)
        n_global = self.crops[0].count
        with torch.no_grad():
            teacher = self._forward(self.teacher, self.teacher_head, crops[:n_global])
            t_all = torch.cat(teacher)
            targets = [F.softmax((t - self.center) / self.teacher_temp, dim=-1) for t in teacher]
            self.center.mul_(self.center_momentum).add_(t_all.mean(0, keepdim=True), alpha=1 - self.center_momentum)
        # DINO's "freeze last layer": no gradient reaches the prototypes early on (AdamW skips them).
        student = self._forward(self.student, self.student_head, crops, progress < self.freeze_last_layer)
        total, pairs = images.new_zeros(()), 0
        for i, target in enumerate(targets):
            for j, s in enumerate(student):
                if i == j:
                    continue
                total = total + torch.sum(-target * F.log_softmax(s / self.student_temp, dim=-1), dim=-1).mean()
                pairs += 1
        return total / pairs

    def update_momentum(self, progress: float) -> None:
        m = cosine_momentum(self.base_momentum, progress)
        ema_update(self.teacher, self.student, m)
        ema_update(self.teacher_head, self.student_head, m)

    def evaluated_backbone(self) -> nn.Module:
        """DINO evaluates the teacher."""
        return self.teacher

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "method": "DINO",
            "prototypes": self.center.shape[1],
            "student_temp": self.student_temp,
            "teacher_temp": self.teacher_temp,
            "center_momentum": self.center_momentum,
            "teacher_momentum": f"{self.base_momentum} -> 1 (cosine)",
            "crops": [f"{c.count}x{c.size}px scale {c.scale}" for c in self.crops],
            "freeze_last_layer": f"first {self.freeze_last_layer:.0%} of the steps",
            "evaluated": "teacher backbone",
        }
