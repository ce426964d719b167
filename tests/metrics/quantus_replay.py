"""Run Quantus 0.6.0 while recording its random draws, and replay them in camscope's metrics.

Quantus draws from NumPy's global state (``np.random.choice`` / ``uniform`` / ``normal`` /
``permutation``); camscope's sampling metrics draw through :class:`camscope.metrics.sampling.Draws`
in the same order (perturbation after perturbation, image after image). Recording Quantus's draws and
serving them from a stand-in ``Draws`` checks both computations on the very same samples.

Quantus 0.6.0 calls ``np.trapz``, which NumPy 2.4 removed; :func:`run_quantus` puts NumPy's own
``np.trapezoid`` (the same function under its new name) back for the duration of the call only.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pytest
import torch


class Recorded:
    """The draws of one Quantus call, per kind, in the order Quantus made them."""

    def __init__(self) -> None:
        self.choice: deque[np.ndarray] = deque()
        self.values: dict[str, deque[float]] = {"uniform": deque(), "normal": deque()}
        self.permutation: deque[np.ndarray] = deque()


def run_quantus(monkeypatch: pytest.MonkeyPatch, metric: Any, seed: int = 0, **call: Any) -> tuple[Any, Recorded]:
    """``metric(**call)`` under ``np.random.seed(seed)``, with its draws recorded."""
    recorded = Recorded()
    originals = {name: getattr(np.random, name) for name in ("choice", "uniform", "normal", "permutation")}

    def choice(*args: Any, **kwargs: Any) -> Any:
        out = originals["choice"](*args, **kwargs)
        recorded.choice.append(np.asarray(out))
        return out

    def values(kind: str) -> Any:
        def draw(*args: Any, **kwargs: Any) -> Any:
            out = originals[kind](*args, **kwargs)
            recorded.values[kind].extend(np.asarray(out, dtype=np.float64).reshape(-1).tolist())
            return out

        return draw

    def permutation(*args: Any, **kwargs: Any) -> Any:
        out = originals["permutation"](*args, **kwargs)
        recorded.permutation.append(np.asarray(out))
        return out

    with monkeypatch.context() as patch:
        patch.setattr(np, "trapz", np.trapezoid, raising=False)
        patch.setattr(np.random, "choice", choice)
        patch.setattr(np.random, "uniform", values("uniform"))
        patch.setattr(np.random, "normal", values("normal"))
        patch.setattr(np.random, "permutation", permutation)
        np.random.seed(seed)
        out = metric(**call)
    return out, recorded


def replay_draws(monkeypatch: pytest.MonkeyPatch, recorded: Recorded) -> None:
    """Make camscope's metrics draw ``recorded`` instead of their own samples."""

    class Replay:
        def __init__(self, seed: int | None, device: torch.device) -> None:
            self.device = device

        def subsets(self, rows: int, n: int, k: int) -> torch.Tensor:
            chosen = [recorded.choice.popleft() for _ in range(rows)]
            assert all(c.shape == (k,) and c.max() < n for c in chosen)
            return torch.as_tensor(np.stack(chosen), device=self.device)

        def permutations(self, rows: int, n: int) -> torch.Tensor:
            return torch.as_tensor(np.stack([recorded.permutation.popleft() for _ in range(rows)]), device=self.device)

        def _values(self, kind: str, shape: tuple[int, ...]) -> torch.Tensor:
            flat = [recorded.values[kind].popleft() for _ in range(int(np.prod(shape)))]
            return torch.tensor(flat, dtype=torch.float32, device=self.device).reshape(shape)

        def uniform(self, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
            return self._values("uniform", shape)

        def normal(self, shape: tuple[int, ...], mean: float, std: float) -> torch.Tensor:
            return self._values("normal", shape)

    from camscope.metrics import sampling

    monkeypatch.setattr(sampling, "Draws", Replay)
