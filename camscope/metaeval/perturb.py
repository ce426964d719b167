"""The maps whose answer is known, and the perturbations the consistency tests apply.

Reference maps are fed to every metric exactly like a method's maps: the oracle (the true object mask),
its inverse (everything but the object) and RandomCAM (a registered method) bracket the real methods, so a
trustworthy metric must score oracle > random > inverse.

Perturbations follow MetaQuantus (Hedström et al., TMLR 2023): *minor* ones should leave a metric's scores
where they were — Gaussian noise on the input pixels, or multiplicative Gaussian noise on the model's
weights, both small enough that the prediction stays (images whose prediction flips are flagged, not
scored); the *disruptive* one should move them. MetaQuantus disrupts the model; here the explanation itself
is disrupted — each map's cells are shuffled — so the model and input a metric sees stay the same and only
the explanation's layout changes (the value histogram is kept, the localisation is destroyed).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

ORACLE = "oracle"
INVERSE = "inverse"
RANDOM = "randomcam"  # the registered method: the random map of the ranking
REFERENCES: tuple[str, ...] = (ORACLE, INVERSE)
# The constant fills of the perturbation metrics whose removal of the whole object is measured per image
# (``object_filled``): a constant-filled object keeps its silhouette, which a shape classifier may still read.
FILLS: tuple[str, ...] = ("black", "mean")
FILL_WORDS = {"black": "the image's darkest value", "mean": "the image's mean value"}  # how findings name them


def reference_maps(masks: np.ndarray) -> dict[str, np.ndarray]:
    """The oracle (the mask as a float map) and its inverse, float32 (N, H, W) in [0, 1]."""
    oracle = np.asarray(masks, dtype=np.float32)
    return {ORACLE: oracle, INVERSE: 1.0 - oracle}


def shuffle_cells(maps: np.ndarray, cell: int, seed: int) -> np.ndarray:
    """Each map's ``cell``×``cell`` blocks permuted at random (one permutation per image, from ``seed``).

    Why cells and not pixels: a pixel shuffle turns every map into salt-and-pepper noise, which a metric can
    detect from its texture alone; permuting cells of the CAM grid keeps each map's texture and values and
    moves its mass away from where the method put it. A side that ``cell`` does not divide keeps its
    remainder rows/columns in place.
    """
    maps = np.asarray(maps, dtype=np.float32)
    n, h, w = maps.shape
    rows, cols = h // cell, w // cell
    if rows * cols < 2:
        return maps.copy()
    out = maps.copy()
    rng = np.random.default_rng(seed)
    for i in range(n):
        blocks = maps[i, : rows * cell, : cols * cell].reshape(rows, cell, cols, cell).transpose(0, 2, 1, 3)
        blocks = blocks.reshape(rows * cols, cell, cell)[rng.permutation(rows * cols)]
        grid = blocks.reshape(rows, cols, cell, cell).transpose(0, 2, 1, 3).reshape(rows * cell, cols * cell)
        out[i, : rows * cell, : cols * cell] = grid
    return out


def object_filled(inputs: torch.Tensor, masks: np.ndarray, baseline: str) -> torch.Tensor:
    """``inputs`` (normalised, N×C×H×W) with every channel of the object's pixels set to the metrics'
    ``baseline`` fill of each image ("black": its darkest value, "mean": its mean, as Quantus defines them)."""
    from camscope.metrics.faithfulness import baseline_fill

    fill = baseline_fill(inputs, baseline).view(-1, 1, 1, 1)
    inside = torch.as_tensor(np.asarray(masks, dtype=bool), device=inputs.device)[:, None]
    return torch.where(inside, fill, inputs)


def noisy_inputs(inputs: torch.Tensor, sigma: float, std: tuple[float, ...], seed: int) -> torch.Tensor:
    """``inputs`` (normalised) plus Gaussian noise of ``sigma`` in [0, 1] pixel units (``/ std`` per channel)."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype) * sigma
    scale = torch.tensor(std, dtype=inputs.dtype).view(1, -1, 1, 1)
    return inputs + (noise / scale).to(inputs.device)


def noisy_model(model: nn.Module, sigma: float, seed: int) -> nn.Module:
    """A copy of ``model`` whose floating-point parameters are multiplied by ``1 + sigma · N(0, 1)``
    (MetaQuantus's model perturbation); buffers (batch-norm statistics) are kept. The original is untouched."""
    twin = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in twin.parameters():
            if parameter.is_floating_point():
                noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
                parameter.mul_(1.0 + sigma * noise.to(parameter.device))
    return twin.eval()
