"""The linear probe: how a self-supervised mini is scored, and its head fitted, on a frozen backbone.

Standard linear evaluation (DINO, MoCo v3): the backbone's pooled features of labelled images the
pre-training never read, a linear classifier fitted on them, and that classifier written into the
model's own head so the shipped model classifies like a supervised one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from camscope.data.synthetic import to_input
from camscope.models import mini_archs as backbones
from camscope_lab.data import PROBE_SEED_BASE


@torch.inference_mode()
def frozen_features(model: nn.Module, images: np.ndarray) -> torch.Tensor:
    """Pooled features (what the head reads) of uint8 scenes, 256 at a time, in eval mode."""
    model.eval()
    x = to_input(images)
    return torch.cat([backbones.features(model, x[i : i + 256]) for i in range(0, len(x), 256)])


def probe_seed(seed: int, chunk: int) -> int:
    """Generator seed of the ``chunk``-th 1024 linear-probe images of run seed ``seed``."""
    return PROBE_SEED_BASE + seed * 10_000 + chunk


def probe_features(
    model: nn.Module,
    n: int,
    seed: int,
    features: Callable[[nn.Module, np.ndarray], torch.Tensor] = frozen_features,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen features and labels of the run seed's ``n`` linear-probe images (never trained on).

    ``features`` maps the model and uint8 scenes to one row per scene: by default what the head reads;
    experiments pass other readouts of the same model and images.
    """
    from camscope.data.synthetic import generate

    feats, labels = [], []
    for start in range(0, n, 1024):
        data = generate(min(1024, n - start), probe_seed(seed, start // 1024))
        feats.append(features(model, data.images))
        labels.append(torch.from_numpy(data.labels))
    return torch.cat(feats), torch.cat(labels)


def fit_linear(feats: torch.Tensor, labels: torch.Tensor, classes: int, seed: int, epochs: int = 100) -> nn.Linear:
    """A linear classifier on ``feats``, with their standardisation folded into its weights (AdamW, cosine)."""
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mean) / std
    torch.manual_seed(seed)
    linear = nn.Linear(z.shape[1], classes)
    optimizer = torch.optim.AdamW(linear.parameters(), lr=1e-2, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    for _ in tqdm(range(epochs), desc="linear probe", unit="epoch", dynamic_ncols=True):
        for idx in torch.split(torch.randperm(len(z)), 256):
            loss = F.cross_entropy(linear(z[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimizer.step()
        schedule.step()
    with torch.no_grad():  # fold: linear((x − mean) / std) = (W / std) x + (b − W · mean / std)
        weight, bias = linear.weight / std, linear.bias - (linear.weight * (mean / std)).sum(1)
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return linear


@torch.no_grad()
def linear_accuracy(linear: nn.Module, feats: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy (%) of a fitted probe on features: the one scoring of every probe, fitted or tested."""
    return float((linear(feats).argmax(1) == labels).float().mean() * 100)


def effective_rank(feats: torch.Tensor) -> float:
    """exp of the entropy of the centred features' normalised squared singular values (Roy & Vetterli, 2007).

    Why: a self-supervised model can collapse partially, its features spanning a few directions; ten
    separable classes need about nine. The number is stored beside the probe so the collapse is seen.
    """
    s = torch.linalg.svdvals((feats - feats.mean(0)).double())
    p = s**2 / (s**2).sum()
    return float(torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum()))


def linear_probe(model: nn.Module, seed: int, n: int = 8192, epochs: int = 100) -> dict[str, Any]:
    """Fit the model's own head on frozen pooled features (:func:`fit_linear`) and write it into the model.

    The backbone is never updated (BatchNorm statistics included: features are taken in eval mode).
    """
    for p in model.parameters():
        p.requires_grad_(False)
    feats, labels = probe_features(model, n, seed)
    linear = fit_linear(feats, labels, backbones.NUM_CLASSES, seed, epochs)
    train_acc = linear_accuracy(linear, feats, labels)
    with torch.no_grad():
        head = backbones.head_of(model)
        head.weight.copy_(linear.weight)
        head.bias.copy_(linear.bias)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    return {
        "probe_images": n,
        "probe_epochs": epochs,
        "probe_train_accuracy": round(train_acc, 2),
        "feature_effective_rank": round(effective_rank(feats), 2),
    }
