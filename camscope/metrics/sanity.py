"""Model-parameter randomization test (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

The parameters of the model are randomized cumulatively (in place, restored afterwards), from the top (output) layer
down to the input; after each step the method explains the randomized model and the map is compared
with the map of the trained model (Spearman rank correlation and SSIM, per image). A faithful method's
maps decorrelate as the model is destroyed; one whose maps do not change is *flagged*: it shows the
image, not the model.

Every ``nn.Parameter`` is randomized — also those outside modules with ``reset_parameters``: class and
distillation tokens, position embeddings, LayerScale gammas, XCiT temperatures (Quantus only calls
``reset_parameters`` and misses them). A module whose parameters all belong to the step is re-initialised
with its own ``reset_parameters`` (its usual initialisation); every parameter still equal to its old
value afterwards (no such method, or one that restores a constant such as BatchNorm's ones and zeros)
is drawn from ``N(0, σ²)`` with σ its own standard deviation (its mean magnitude when constant,
0.02 when zero). Buffers are left as they are, as in the paper, except where a module's own
``reset_parameters`` resets them (BatchNorm's running statistics); all are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from camscope.core.capture import model_lock
from camscope.core.errors import MetricInputError
from camscope.metrics._common import check_maps

Explain = Callable[[nn.Module], np.ndarray]
ROOT = "(root)"


@dataclass
class SanityResult:
    """Similarity of each step's maps to the trained model's maps: ``spearman``/``ssim`` (steps, N)."""

    steps: list[str]
    spearman: np.ndarray
    ssim: np.ndarray
    baseline: np.ndarray
    threshold: float

    @property
    def flagged(self) -> bool:
        """True when the maps of the fully randomized model still rank-correlate with the trained ones
        (mean Spearman ≥ ``threshold``): the method does not depend on the model's parameters."""
        return bool(self.spearman[-1].mean() >= self.threshold)

    def summary(self) -> dict[str, np.ndarray]:
        return {"sanity_spearman": self.spearman[-1], "sanity_ssim": self.ssim[-1]}


def cascade_steps(model: nn.Module, layers: Sequence[str] | None = None) -> list[tuple[str, list[str]]]:
    """The randomization steps, top down: (step name, names of the parameters it randomizes).

    ``layers``: submodule paths, top layer first (``model.get_submodule`` names). Default: the
    model's children in reverse order, with a Sequential/ModuleList child split into its items
    (ResNet stages into blocks, ViT ``blocks`` into single blocks). A last step ``(root)`` takes every
    parameter no earlier step covered (e.g. a ViT's cls token and position embedding), so the final
    model has no trained parameter left.
    """
    if layers is None:
        names: list[str] = []
        for child_name, child in model.named_children():
            if isinstance(child, (nn.Sequential, nn.ModuleList)) and len(child) > 1:
                names.extend(f"{child_name}.{item}" for item, _ in child.named_children())
            else:
                names.append(child_name)
        layers = names[::-1]
    taken: set[str] = set()
    steps: list[tuple[str, list[str]]] = []
    for path in layers:
        try:
            module = model.get_submodule(path)
        except AttributeError as exc:
            raise MetricInputError(f"the model has no submodule {path!r} to randomize") from exc
        params = [f"{path}.{p}" for p, _ in module.named_parameters()]
        params = [p for p in params if p not in taken]
        if params:
            taken.update(params)
            steps.append((path, params))
    rest = [p for p, _ in model.named_parameters() if p not in taken]
    if rest:
        steps.append((ROOT, rest))
    if not steps:
        raise MetricInputError("the model has no parameters to randomize")
    return steps


def randomize_parameters(
    model: nn.Module,
    names: Sequence[str],
    generator: torch.Generator,
    module_seed: int | None = None,
    before: Mapping[str, torch.Tensor] | None = None,
) -> None:
    """Randomize the named parameters of ``model`` in place (see the module doc for how).

    Each ``reset_parameters`` runs under its own seed, drawn from ``generator`` — or ``module_seed``
    for every module, as Quantus seeds each layer's reset (``torch.manual_seed(seed + 1)``), so the
    two can be compared draw for draw. ``before``: copies of the parameters' current values, where the
    caller keeps them anyway (else they are copied here, to see which parameters a reset left as they were).
    """
    params = dict(model.named_parameters())
    wanted = set(names)
    old = {n: params[n].detach().clone() for n in names} if before is None else before
    # the modules that may own only these parameters: their owners and the owners' parents
    holders = {""} if len(wanted) == len(params) else set()
    for name in names:
        path = name.rpartition(".")[0]
        while path:
            holders.add(path)
            path = path.rpartition(".")[0]
    with torch.no_grad():
        for mod_name, module in model.named_modules():
            if mod_name not in holders:
                continue
            own = [f"{mod_name}.{p}" if mod_name else p for p, _ in module.named_parameters()]
            if own and hasattr(module, "reset_parameters") and set(own) <= wanted:
                seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
                seed = seed if module_seed is None else module_seed
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    module.reset_parameters()
        for n in names:
            p = params[n]
            if torch.equal(p, old[n]):
                flat = old[n].double()
                scale = float(flat.std()) if flat.numel() > 1 else 0.0
                scale = scale or float(flat.abs().mean()) or 0.02
                noise = torch.randn(p.shape, generator=generator, dtype=torch.float64) * scale
                p.copy_(noise.to(p.dtype))


def randomization_sanity(
    model: nn.Module,
    explain: Explain,
    *,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    threshold: float = 0.5,
) -> SanityResult:
    """Cascading randomization: Spearman and SSIM between maps of the trained and randomized model.

    ``explain(m)`` runs the method on model ``m`` (the trained one, then the randomized copy after
    each step) and returns maps (N, H, W) in [0, 1]; it must find its layers on the model it gets,
    e.g. ``m.get_submodule("layer4")``. The model is randomized in place and restored afterwards
    (see :func:`cascade`).
    """
    steps = cascade_steps(model, layers)
    baseline = check_maps(np.asarray(explain(model))).numpy().astype(np.float64)
    spearman, ssims = [], []
    with closing(cascade(model, steps, seed)) as randomized:
        for _, work in randomized:
            maps = check_maps(np.asarray(explain(work)), baseline.shape).numpy().astype(np.float64)
            spearman.append(spearman_rank(baseline, maps))
            ssims.append(ssim(baseline, maps))
    return SanityResult(
        steps=[name for name, _ in steps],
        spearman=np.stack(spearman),
        ssim=np.stack(ssims),
        baseline=baseline,
        threshold=threshold,
    )


def cascade(
    model: nn.Module, steps: Sequence[tuple[str, Sequence[str]]], seed: int, module_seed: int | None = None
) -> Generator[tuple[str, nn.Module], None, None]:
    """The cascading randomization itself: ``model`` randomized in place, step by step (cumulatively,
    in the order of ``steps``); yields (step name, the model) after each step — explain it before asking
    for the next step. Iterate inside ``contextlib.closing`` (the callers here do): when the iteration
    ends, is broken off or fails, the model's parameters and buffers get their saved values back.

    In place: a deep copy would cost about a forward pass and hold a second model in memory. The model's
    lock (:func:`camscope.core.capture.model_lock`) is held throughout, so no other camscope call on it
    sees the randomized weights.
    """
    saved = {name: t.detach().clone() for name, t in [*model.named_parameters(), *model.named_buffers()]}
    generator = torch.Generator().manual_seed(seed)
    with model_lock(model):
        try:
            for name, names in steps:
                randomize_parameters(model, names, generator, module_seed, before=saved)
                yield name, model
        finally:
            current = dict([*model.named_parameters(), *model.named_buffers()])
            with torch.no_grad():
                for name, value in saved.items():
                    current[name].copy_(value)


def spearman_rank(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each pair of maps (N,): Pearson correlation of average ranks.

    A constant map has no ranking: two constant maps score 1 (nothing changed), a constant map
    against a non-constant one scores 0. Never NaN.
    """
    ra = rankdata(a.reshape(len(a), -1), axis=1)
    rb = rankdata(b.reshape(len(b), -1), axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    na, nb = np.sqrt((ra**2).sum(1)), np.sqrt((rb**2).sum(1))
    out = np.zeros(len(a))
    both = (na > 0) & (nb > 0)
    out[both] = (ra[both] * rb[both]).sum(1) / (na[both] * nb[both])
    out[(na == 0) & (nb == 0)] = 1.0
    return out


def ssim(a: np.ndarray, b: np.ndarray, data_range: float | np.ndarray = 1.0, win_size: int = 7) -> np.ndarray:
    """Mean structural similarity of each pair of maps (N,), as ``skimage.metrics.structural_similarity``
    with its defaults (7×7 uniform window, K1 = 0.01, K2 = 0.03, sample covariance, the mean over the
    positions whose window lies inside the image) and ``data_range=1`` for maps in [0, 1]. Rows (N, L)
    are compared as 1-D signals (a window of 7), as Quantus's ``ssim`` compares flattened maps;
    ``data_range`` may be one value per pair."""
    x = torch.as_tensor(a, dtype=torch.float64)[:, None]
    y = torch.as_tensor(b, dtype=torch.float64)[:, None]
    dims = x.ndim - 2
    win = min(win_size, *x.shape[2:])
    win -= 1 - win % 2  # odd

    def pool(t: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(t, win, stride=1) if dims == 2 else nn.functional.avg_pool1d(t, win, stride=1)

    ux, uy = pool(x), pool(y)
    points = win**dims
    cov_norm = points / (points - 1) if points > 1 else 1.0
    vx = cov_norm * (pool(x * x) - ux * ux)
    vy = cov_norm * (pool(y * y) - uy * uy)
    vxy = cov_norm * (pool(x * y) - ux * uy)
    span = torch.as_tensor(data_range, dtype=torch.float64).reshape(-1, *([1] * (dims + 1)))
    c1, c2 = (0.01 * span) ** 2, (0.03 * span) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return s.mean(dim=tuple(range(1, s.ndim))).numpy()
