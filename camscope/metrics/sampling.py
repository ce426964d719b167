"""Every random number the sampling metrics use, drawn from one seeded generator on the inputs' device.

Why one object: a metric asks for its draws in a fixed order (the order of its perturbed inputs), so a
``seed`` reproduces a result on any device, and a test can replace :class:`Draws` with a replay of a
peer's draws (Quantus draws from NumPy's global state) to check the arithmetic on the same samples.
Draws are requested chunk by chunk, never all at once: memory grows with the batch size only.
"""

from __future__ import annotations

import torch


class Draws:
    """Random subsets, permutations and noise, from ``torch.Generator(device).manual_seed(seed)``.

    ``seed=None`` seeds from the operating system (a fresh draw every call).
    """

    def __init__(self, seed: int | None, device: torch.device) -> None:
        self.device = device
        self.generator = torch.Generator(device=device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def subsets(self, rows: int, n: int, k: int) -> torch.Tensor:
        """``rows`` uniform random ``k``-subsets of ``range(n)`` (int64 (rows, k)): the top-k of uniform keys,
        in no particular order (a subset; unsorted top-k is the cheaper selection)."""
        keys = torch.rand(rows, n, generator=self.generator, device=self.device)
        return keys.topk(k, dim=1, sorted=False).indices

    def permutations(self, rows: int, n: int) -> torch.Tensor:
        """``rows`` uniform random permutations of ``range(n)`` (int64 (rows, n))."""
        return torch.rand(rows, n, generator=self.generator, device=self.device).argsort(dim=1)

    def uniform(self, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
        """Uniform noise in [low, high) (float32)."""
        return low + (high - low) * torch.rand(shape, generator=self.generator, device=self.device)

    def normal(self, shape: tuple[int, ...], mean: float, std: float) -> torch.Tensor:
        """Gaussian noise (float32)."""
        return mean + std * torch.randn(shape, generator=self.generator, device=self.device)
