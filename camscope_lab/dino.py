"""DINO (Caron et al., ICCV 2021): self-distillation with no labels, at mini scale.

A student network matches the output distribution of a momentum teacher across views: the teacher
sees only the two global crops, the student all crops (2 global + several small local ones:
multi-crop), so the student learns that a part of the scene predicts what the whole looks like.
Collapse is avoided by *centering* the teacher's logits (an EMA of their batch mean is subtracted)
and *sharpening* them (a low teacher temperature); the loss is the cross-entropy
``−Σ softmax((t − c)/τ_t) · log softmax(s/τ_s)`` over all pairs of different views.
After training the *teacher* backbone is the one evaluated (as in DINO's linear evaluation).

Two options from DINOv2 (Oquab et al., 2023) against the partial collapse a small model can fall into
(its features spanning a few directions, the loss drifting towards the uniform output):
``centering="sinkhorn"`` replaces the EMA center by Sinkhorn-Knopp normalisation of the teacher's
outputs over the batch (SwAV's equipartition: every prototype gets the same share of the batch), and
``koleo`` weights the KoLeo spreading term ``−(1/n) Σ_i log min_{j≠i} ‖x_i − x_j‖`` on the student's
L2-normalised backbone features of each global crop (Sablayrolles et al., ICLR 2019).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from camscope.models import mini_archs as backbones
from camscope_lab.augment import CropSpec, views
from camscope_lab.ssl_common import cosine_momentum, ema_update, mlp, momentum_copy

GLOBAL_SCALE = (0.4, 1.0)  # area fraction of DINO's global crops (its default)
CENTERING = ("ema", "sinkhorn")  # how the teacher's outputs are centred (DINO; DINOv2 / SwAV)


def multi_crop(size: int = 64, scale: tuple[float, float] = GLOBAL_SCALE, local: int = 2) -> tuple[CropSpec, ...]:
    """DINO's crops: two global ones of ``size`` px, and ``local`` crops of half the side covering 10 % up to
    the global crops' smallest area. The one definition of the layout, for the default and every config."""
    return CropSpec(2, size, scale), CropSpec(local, size // 2, (0.1, scale[0]))


def sinkhorn_knopp(logits: torch.Tensor, temp: float, iterations: int = 3) -> torch.Tensor:
    """Teacher targets (B, K) from logits: ``exp(logits / temp)`` scaled so that every prototype's column
    carries 1/K of the batch's mass and every row sums to 1 (SwAV, alternating normalisations)."""
    q = torch.exp((logits - logits.max()) / temp).t().double()  # (K, B); the shift cancels in the scaling
    q = q / q.sum()
    k, b = q.shape
    for _ in range(iterations):
        q = q / (q.sum(1, keepdim=True) * k)
        q = q / (q.sum(0, keepdim=True) * b)
    return (q * b).t().to(logits.dtype)


def koleo_loss(features: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """KoLeo: minus the mean log distance of each L2-normalised row to its nearest other row."""
    x = F.normalize(features, dim=-1, eps=eps)
    distances = torch.cdist(x, x)
    # unit vectors are at most 2 apart: adding 4 on the diagonal keeps a row from being its own nearest
    distances = distances + torch.eye(len(x), dtype=x.dtype, device=x.device) * 4.0
    return -torch.log(distances.min(1).values + eps).mean()


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

    center: torch.Tensor  # a buffer: the EMA of the teacher's batch means

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
        centering: str = "ema",
        koleo: float = 0.0,
    ) -> None:
        super().__init__()
        if centering not in CENTERING:
            raise ValueError(f"centering must be one of {CENTERING}, not {centering!r}")
        self.student = backbone
        self.student_head = DinoHead(backbones.embed_dim(backbone), out_dim)
        self.teacher = momentum_copy(backbone)
        self.teacher_head = momentum_copy(self.student_head)
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.student_temp, self.teacher_temp = student_temp, teacher_temp
        self.center_momentum, self.base_momentum = center_momentum, base_momentum
        self.crops = crops
        self.freeze_last_layer = freeze_last_layer  # fraction of training with the prototypes held still
        self.centering, self.koleo = centering, koleo

    def backbones(self) -> tuple[nn.Module, nn.Module]:
        """Every copy of the backbone (trained, momentum): what a warm start from a model file loads."""
        return self.student, self.teacher

    def trainable_parameters(self) -> list[nn.Parameter]:
        head = set(map(id, backbones.head_of(self.student).parameters()))  # the classifier is the probe's
        return [p for p in self.student.parameters() if id(p) not in head] + list(self.student_head.parameters())

    def _forward(
        self, net: nn.Module, head: DinoHead, crops: list[torch.Tensor], freeze: bool = False
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Backbone features and head outputs per crop; same-size crops go through together (as DINO does)."""
        feats: list[torch.Tensor] = []
        out: list[torch.Tensor] = []
        start = 0
        for spec in self.crops:
            group = crops[start : start + spec.count]
            if not group:
                break
            f = backbones.features(net, torch.cat(group))
            feats += f.chunk(len(group))
            out += head(f, freeze).chunk(len(group))
            start += spec.count
        return feats, out

    def _targets(self, teacher: list[torch.Tensor]) -> list[torch.Tensor]:
        """The teacher's sharpened, centred distributions per global crop (updates the EMA center)."""
        t_all = torch.cat(teacher)
        if self.centering == "sinkhorn":
            return list(sinkhorn_knopp(t_all, self.teacher_temp).chunk(len(teacher)))
        targets = [F.softmax((t - self.center) / self.teacher_temp, dim=-1) for t in teacher]
        self.center.mul_(self.center_momentum).add_(t_all.mean(0, keepdim=True), alpha=1 - self.center_momentum)
        return targets

    def distillation_loss(self, targets: list[torch.Tensor], student: list[torch.Tensor]) -> torch.Tensor:
        """DINO's term: the cross-entropy of each student view's output to the teacher's target of every other
        view (a global crop is never matched to itself), averaged over those pairs."""
        total, pairs = student[0].new_zeros(()), 0
        for i, target in enumerate(targets):
            for j, s in enumerate(student):
                if i == j:
                    continue
                total = total + torch.sum(-target * F.log_softmax(s / self.student_temp, dim=-1), dim=-1).mean()
                pairs += 1
        return total / pairs

    def loss(self, images: torch.Tensor, progress: float, g: torch.Generator) -> torch.Tensor:
        crops = views(images, self.crops, g)
        n_global = self.crops[0].count
        with torch.no_grad():
            targets = self._targets(self._forward(self.teacher, self.teacher_head, crops[:n_global])[1])
        # DINO's "freeze last layer": no gradient reaches the prototypes early on (AdamW skips them).
        feats, student = self._forward(self.student, self.student_head, crops, progress < self.freeze_last_layer)
        total = self.distillation_loss(targets, student)
        if self.koleo:
            total = total + self.koleo * sum(koleo_loss(f) for f in feats[:n_global]) / n_global
        return total

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
            "centering": self.centering if self.centering == "sinkhorn" else f"EMA {self.center_momentum}",
            "koleo": self.koleo,
            "teacher_momentum": f"{self.base_momentum} -> 1 (cosine)",
            "crops": [f"{c.count}x{c.size}px scale {c.scale}" for c in self.crops],
            "freeze_last_layer": f"first {self.freeze_last_layer:.0%} of the steps",
            "evaluated": "teacher backbone",
        }
