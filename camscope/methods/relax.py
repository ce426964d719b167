"""RELAX (Wickström et al., 2022): explain a representation by masking the input.

Masks M_i (smooth random masks, see :func:`relax_masks`) hide parts of the image; each masked copy is
scored by the similarity of its embedding to the unmasked one, s_i = cos(f(x), f(x ⊙ M_i)). Then

    importance  R = Σ_i s_i M_i / Σ_i M_i
    uncertainty U = Σ_i M_i (s_i − R)² / Σ_i M_i

The reference accumulates both with a running (Welford) update and leaves U as the unnormalised sum;
we sum in float64 in closed form and divide U by Σ M_i, so that U is a variance comparable between
pixels. Masks are drawn from a seeded generator (the same masks for every image and every call), and
scored in batches of ``batch_size`` under ``torch.inference_mode()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from camscope.core.capture import ReshapeTransform, eval_mode
from camscope.core.errors import InputError
from camscope.core.progress import steps
from camscope.core.targets import TargetSpec, model_logits, repeated_target_scores, resolve_targets
from camscope.methods.base import BaseCAM, CamState, scale_per_image
from camscope.methods.registry import register_method


def draw_cells(
    count: int, generator: torch.Generator, num_cells: int = 7, p_keep: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """The random part of ``count`` masks: a num_cells² Bernoulli(p_keep) grid and a (dy, dx) shift each.

    Drawn all at once (a few bytes per mask), so the masks do not depend on the batch size.
    """
    grid = (torch.rand(count, 1, num_cells, num_cells, generator=generator) < p_keep).float()
    return grid, torch.randint(0, num_cells, (count, 2), generator=generator)


def render_masks(grid: torch.Tensor, shifts: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(count, 1, H, W) masks in [0, 1]: each grid bilinearly upsampled to ``size``, reflect-padded by
    num_cells // 2 and cropped at its shift (0…num_cells − 1 pixels), as in the reference."""
    up = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)
    pad = grid.shape[-1] // 2
    up = F.pad(up, (pad, pad, pad, pad), mode="reflect")
    return torch.stack([up[i, :, dy : dy + size[0], dx : dx + size[1]] for i, (dy, dx) in enumerate(shifts.tolist())])


@register_method("relax")
class RELAX(BaseCAM):
    """RELAX importance map (uncertainty in ``self.uncertainty`` after each call; see the module docstring).

    Args:
        model: an embedding model (``load_model(name, head=False)``) or any model.
        target_layers, reshape_transform: unused (RELAX masks the input).
        num_masks: masks per image (paper: 30 batches × 100 = 3000).
        batch_size: masked copies per forward pass.
        num_cells, p_keep: the mask grid and the probability that a cell is kept (paper: 7, 0.5).
        seed: seed of the masks.

    Targets: ``None`` (default) scores each masked copy by the cosine of its embedding to the image's
    unmasked one (RELAX); any other target (``SimilarityTarget``, ``CorpusTarget``, a class) scores the
    masked outputs with that target instead. The map is R min-max scaled per image (no ReLU: R is a
    similarity, its sign carries no meaning).
    """

    uses_gradients = False
    takes_layers = False
    params = ("num_masks", "batch_size", "num_cells", "p_keep", "seed", "progress")
    label_free_by_default = True  # targets=None already explains the embedding (cosine to the unmasked one)

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str | None = None,
        reshape_transform: ReshapeTransform | None = None,
        num_masks: int = 3000,
        batch_size: int = 100,
        num_cells: int = 7,
        p_keep: float = 0.5,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        if num_masks < 1 or batch_size < 1 or num_cells < 2 or not 0.0 < p_keep < 1.0:
            raise InputError(
                f"RELAX needs num_masks ≥ 1, batch_size ≥ 1, num_cells ≥ 2 and 0 < p_keep < 1; "
                f"got {num_masks}, {batch_size}, {num_cells}, {p_keep}"
            )
        self.model = model
        self.target_layers = []
        self.reshape_transform = reshape_transform
        self.outputs: torch.Tensor | None = None
        self.num_masks, self.batch_size = num_masks, batch_size
        self.num_cells, self.p_keep, self.seed = num_cells, p_keep, seed
        self.progress = progress
        self.importance: np.ndarray | None = None  # R of the last call, unscaled, (N, H, W)
        self.uncertainty: np.ndarray | None = None  # U of the last call, (N, H, W)

    def __repr__(self) -> str:
        return f"RELAX(num_masks={self.num_masks}, seed={self.seed})"

    def _mask_batches(self, size: tuple[int, int], device: torch.device) -> Iterator[torch.Tensor]:
        grid, shifts = draw_cells(self.num_masks, torch.Generator().manual_seed(self.seed), self.num_cells, self.p_keep)
        starts = range(0, self.num_masks, self.batch_size)
        for start in steps(starts, "RELAX", bar=self.progress):
            chunk = slice(start, start + self.batch_size)
            yield render_masks(grid[chunk], shifts[chunk], size).to(device)

    def _maps(self, x: torch.Tensor, targets: TargetSpec, eigen_smooth: bool) -> torch.Tensor:
        if eigen_smooth:
            raise InputError("eigen_smooth does not apply to RELAX (it has no channels)")
        n, size = x.shape[0], (int(x.shape[-2]), int(x.shape[-1]))
        with eval_mode(self.model), torch.inference_mode():
            outputs = model_logits(self.model(x))
            self.outputs = outputs
            state = CamState(x, outputs, [])
            if targets is not None:
                state.targets = resolve_targets(targets, outputs)
            totals = torch.zeros(3, n, *size, dtype=torch.float64, device=x.device)  # Σ M, Σ s M, Σ s² M
            for masks in self._mask_batches(size, x.device):
                for i in range(n):
                    masked = model_logits(self.model(x[i : i + 1] * masks))
                    if state.targets:
                        scores = repeated_target_scores(state.targets[i], masked)
                    else:
                        scores = F.cosine_similarity(masked, outputs[i : i + 1].expand_as(masked), dim=-1)
                    m, s = masks[:, 0].double(), scores.double()[:, None, None]
                    totals[0, i] += m.sum(0)
                    totals[1, i] += (s * m).sum(0)
                    totals[2, i] += (s * s * m).sum(0)
        weight = totals[0].clamp(min=1e-10)
        importance = totals[1] / weight
        uncertainty = (totals[2] / weight - importance**2).clamp(min=0)
        self.importance = importance.float().cpu().numpy()
        self.uncertainty = uncertainty.float().cpu().numpy()
        return scale_per_image(importance.float())
