"""pytorch-grad-cam 1.5.7 set up the way camscope documents its deliberate differences, so that the
parity tests and the benchmarks compare the same computation.

Ablation-CAM on token models: the peer's ``AblationLayerVit`` sets an ablated channel to
``min(batch) - 1e7``, re-reading the minimum after every write, so the value depends on the channel's
position in the ablation batch. camscope zeroes the channel (the paper's ablation, and what the peer's
CNN layer does for ReLU outputs); ``ZeroAblationLayerVit`` makes the peer zero it too.
"""

from __future__ import annotations

import torch
from pytorch_grad_cam.ablation_layer import AblationLayerVit


class ZeroAblationLayerVit(AblationLayerVit):  # type: ignore[misc]  # pytorch-grad-cam has no type hints
    """AblationLayerVit that zeroes the ablated channel."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.activations
        for i in range(out.size(0)):
            out[i, :, self.indices[i]] = 0
        return out
