"""pytorch-grad-cam 1.5.7 set up the way camscope documents its deliberate differences, so that the
parity tests and the benchmarks compare the same computation.

Ablation-CAM on token models: the peer's ``AblationLayerVit`` sets an ablated channel to
``min(batch) - 1e7``, re-reading the minimum after every write, so the value depends on the channel's
position in the ablation batch. camscope zeroes the channel (the paper's ablation, and what the peer's
CNN layer does for ReLU outputs); ``ZeroAblationLayerVit`` makes the peer zero it too.

Ablation-CAM on Faster R-CNN's feature pyramid: the peer's ``AblationLayerFasterRCNN`` sets the channel to
−1000, camscope zeroes it; ``zero_faster_rcnn_ablation`` is a ``__call__`` for that layer that zeroes it
(patched onto the class: a subclass cannot stand in for it, as the peer's ``__init__`` names its class through
the module).
"""

from __future__ import annotations

import torch
from pytorch_grad_cam.ablation_layer import AblationLayerFasterRCNN, AblationLayerVit


class ZeroAblationLayerVit(AblationLayerVit):  # type: ignore[misc]  # pytorch-grad-cam has no type hints
    """AblationLayerVit that zeroes the ablated channel."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.activations
        for i in range(out.size(0)):
            out[i, :, self.indices[i]] = 0
        return out


def zero_faster_rcnn_ablation(self: AblationLayerFasterRCNN, x: object) -> dict[str, torch.Tensor]:
    """``AblationLayerFasterRCNN.__call__`` zeroing the ablated channel: channel k of the joined pyramid is channel
    k mod 256 of level k // 256, the levels in the pyramid's order ('0' … '3', 'pool')."""
    levels = list(self.activations.values())
    for row in range(levels[0].size(0)):
        level, channel = divmod(int(self.indices[row]), 256)
        levels[level][row, channel] = 0
    out: dict[str, torch.Tensor] = self.activations
    return out
