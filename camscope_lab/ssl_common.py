"""Pieces DINO and MoCo v3 share: projection MLPs and the momentum (EMA) update.

Both methods keep a slowly moving copy of the network (DINO's teacher, MoCo's momentum encoder)
whose weights follow the trained one as ``θ_m ← m·θ_m + (1 − m)·θ`` with ``m`` rising from a
base value to 1 on a cosine schedule, so the targets change more and more slowly as training ends.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import TypeVar

import torch
from torch import nn

_M = TypeVar("_M", bound=nn.Module)


def mlp(dims: tuple[int, ...], last_bn: bool = False, bn_affine: bool = False) -> nn.Sequential:
    """Linear → BN → GELU blocks between ``dims``; optionally a non-affine BN after the last Linear."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        last = i == len(dims) - 2
        layers.append(nn.Linear(a, b, bias=last and not last_bn))
        if not last:
            layers += [nn.BatchNorm1d(b), nn.GELU()]
        elif last_bn:
            layers.append(nn.BatchNorm1d(b, affine=bn_affine))
    return nn.Sequential(*layers)


def momentum_copy(module: _M) -> _M:
    """A frozen copy that only ever changes through :func:`ema_update`."""
    twin = copy.deepcopy(module)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


def cosine_momentum(base: float, progress: float) -> float:
    """``m`` goes from ``base`` at the start to 1 at the end of training."""
    return 1 - (1 - base) * (math.cos(math.pi * min(max(progress, 0.0), 1.0)) + 1) / 2


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, m: float) -> None:
    """Parameters of ``target`` ← m·target + (1 − m)·source (buffers such as BN statistics are its own)."""
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        t.mul_(m).add_(s.detach(), alpha=1 - m)
