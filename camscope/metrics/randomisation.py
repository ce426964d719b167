"""Randomisation metrics of Quantus 0.6.0: does the explanation depend on the model?

* :func:`mprt` — Quantus's MPRT: :func:`smooth_mprt` with one noiseless sample.
* :func:`smooth_mprt` — Smooth MPRT (Hedström et al., "Sanity Checks Revisited: An Exploration to
  Repair the Model Parameter Randomisation Test", XAI in Action 2023): the model parameter
  randomisation test of :mod:`camscope.metrics.sanity` (Adebayo et al. 2018), with each explanation
  averaged over ``nr_samples`` noisy copies of the input (the last one noiseless) to denoise it. Score:
  Spearman correlation between the given maps and the smoothed maps of the fully randomised model
  (lower is better); the result keeps every step's.
* :func:`efficient_mprt` — Efficient MPRT (same paper): the relative rise in the explanation's
  complexity (entropy of its histogram) from the trained to the fully randomised model (higher is better).
* :func:`random_logit` — Random logit test (Sixt et al., "When Explanations Lie", ICML 2020): SSIM
  between the map of the explained class and the map of a random other class (lower is better).

All three re-explain: ``explain_func`` is a camscope method name (with ``explain_func_kwargs``: its
``layers`` as paths, which are found again on the randomised copy, and its constructor parameters) or
a callable ``explain_func(model=, inputs=, targets=, **explain_func_kwargs)`` returning maps (N, H, W)
— Quantus's ``explain_func`` convention, with a tensor as ``inputs``. Forward and backward passes are
batched over images × noise samples (``batch_size`` at a time) on the model's device.

The randomisation is the one cascade of :mod:`camscope.metrics.sanity`, over Quantus's layers (every
module with ``reset_parameters``, in module order: ``layer_order="bottom_up"``, or reversed), each
reset seeded with ``seed + 1`` as Quantus does; parameters outside such modules (class tokens,
position embeddings) are randomised in a last step, which Quantus skips. The noise of Smooth MPRT is
drawn as Quantus draws it — ``randn`` of NumPy's legacy stream, here seeded with ``seed``, image batch
by sample — so a run can be compared with Quantus's draw for draw.

Quantus's normalisation (a positive rescaling of each map) is left out of the MPRT pair: neither a
rank correlation nor a histogram over the map's own range can see it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from camscope.core.errors import MetricInputError, warn
from camscope.core.outputs import read_scores
from camscope.core.targets import TargetSpec, class_index, resolve_targets
from camscope.metrics._common import (
    ArrayLike,
    ImageScores,
    attributions,
    check_batch_size,
    check_inputs,
    image_logits,
)
from camscope.metrics.registry import Column, register_metric
from camscope.metrics.sanity import cascade, cascade_steps, spearman_rank, ssim

Explainer = Callable[[nn.Module, torch.Tensor, Sequence[int]], torch.Tensor]
LAYER_ORDERS = ("bottom_up", "top_down")


@dataclass
class RandomisationResult:
    """Per-step values (steps + 1, N), the trained model's first (``"original"``), and the score (N,)."""

    name: str
    steps: list[str]
    values: np.ndarray
    scores: np.ndarray

    def summary(self) -> dict[str, np.ndarray]:
        return {self.name: self.scores.astype(np.float64)}


def explainer(
    explain_func: str | Callable[..., Any] | None, explain_func_kwargs: Mapping[str, Any] | None
) -> Explainer:
    """``(model, inputs, classes) -> maps`` (N, H, W) from a method name or a Quantus-style callable."""
    kwargs = dict(explain_func_kwargs or {})
    if explain_func is None:
        raise MetricInputError(
            "this metric re-explains the model: give explain_func (a camscope method name or a callable)"
        )
    if callable(explain_func):
        func = explain_func

        def run_callable(model: nn.Module, inputs: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
            return torch.as_tensor(np.asarray(func(model=model, inputs=inputs, targets=np.asarray(classes), **kwargs)))

        return run_callable
    from camscope.core.layer_paths import module_path
    from camscope.methods import get_method
    from camscope.models.layers import cam_layers_from_names, infer_cam_layers

    cls = get_method(explain_func)
    layers = kwargs.pop("layers", None)
    unknown = sorted(set(kwargs) - set(cls.params))
    if unknown:
        raise MetricInputError(
            f"explain_func_kwargs: method {explain_func!r} takes no parameter(s) {', '.join(unknown)}"
        )

    found: list[Any] = []  # (layer paths, reshape): resolved once, then found again on every copy by path

    def run_method(model: nn.Module, inputs: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
        target: Any = None
        reshape: Any = None
        if cls.takes_layers:
            if not found:
                hw = (int(inputs.shape[-2]), int(inputs.shape[-1]))
                modules, reshape = (
                    cam_layers_from_names(model, list(layers), hw) if layers else infer_cam_layers(model, hw)
                )
                found.extend([[module_path(model, m) for m in modules], reshape])
            target, reshape = found
        return cls(model, target, reshape, **kwargs).compute(inputs, list(classes))  # stays on the device

    return run_method


def _explain(
    run: Explainer, model: nn.Module, inputs: torch.Tensor, classes: Sequence[int], batch_size: int
) -> torch.Tensor:
    """Maps of ``inputs`` (any number of rows) for ``classes``, ``batch_size`` rows per call, as float64 (N, H, W)."""
    out = []
    for start in range(0, len(inputs), batch_size):
        maps = run(model, inputs[start : start + batch_size], classes[start : start + batch_size])
        maps = maps.detach().double()
        if maps.ndim == 4 and maps.shape[1] == 1:
            maps = maps[:, 0]
        if maps.ndim != 3 or maps.shape[-2:] != inputs.shape[-2:]:
            raise MetricInputError(
                f"explain_func returned maps of shape {tuple(maps.shape)} for inputs {tuple(inputs.shape)}"
            )
        out.append(maps.to(inputs.device))
    return torch.cat(out)


def _classes(
    model: nn.Module, inputs: torch.Tensor, targets: TargetSpec, batch_size: int, outputs: bool = True
) -> tuple[list[int], int | None]:
    """Each image's class (a class target, or the top-1 for None) and the model's number of outputs.

    Class indices given one per image need no forward pass unless ``outputs`` is asked for (the
    explanations check their range anyway).
    """
    if not outputs and isinstance(targets, Sequence) and len(targets) == len(inputs):
        given = [class_index(t) for t in targets]
        if all(index is not None for index in given):
            return [int(index) for index in given if index is not None], None
    logits = image_logits(model, inputs, batch_size)
    classes = []
    for t in resolve_targets(targets, logits):
        index = class_index(getattr(t, "category", None))
        if index is None:
            raise MetricInputError("randomisation metrics explain classes: give class targets (or None for the top-1)")
        classes.append(index)
    return classes, int(read_scores(logits, "randomisation metrics").shape[1])


def _prepare(inputs: torch.Tensor, maps: ArrayLike, batch_size: int) -> torch.Tensor:
    check_inputs(inputs, maps)
    check_batch_size(batch_size)
    return inputs


def quantus_layers(model: nn.Module, layer_order: str) -> list[str]:
    """Quantus's randomisation steps: every module with ``reset_parameters`` and parameters, in module
    order (``bottom_up``) or reversed (``top_down``)."""
    if layer_order not in LAYER_ORDERS:
        raise MetricInputError(f"layer_order must be one of {', '.join(LAYER_ORDERS)}, got {layer_order!r}")
    names = [
        name
        for name, module in model.named_modules()
        if name and hasattr(module, "reset_parameters") and any(True for _ in module.parameters())
    ]
    return names if layer_order == "bottom_up" else names[::-1]


def random_logit(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    explain_func: str | Callable[..., Any] | None = None,
    explain_func_kwargs: Mapping[str, Any] | None = None,
    num_classes: int | None = None,
    seed: int = 42,
    abs: bool = False,
    normalise: bool = True,
    batch_size: int = 64,
) -> ImageScores:
    """SSIM between each map and the map of a random other class (the maps flattened, as Quantus
    compares them: a 1-D SSIM with window 7 and the pair's own value range).

    The other class is uniform over the ``num_classes`` first classes minus the explained one (default:
    all the model's outputs; Quantus's default is 1000), drawn as Quantus draws it: NumPy's legacy
    ``randint`` seeded with ``seed`` (Quantus reseeds every batch of 64 images; equal up to 64 images).
    """
    _prepare(inputs, maps, batch_size)
    classes, outputs = _classes(model, inputs, targets, batch_size)  # the outputs bound num_classes
    assert outputs is not None
    num_classes = outputs if num_classes is None else num_classes
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or not 2 <= num_classes <= outputs
    ):
        raise MetricInputError(
            f"random_logit: num_classes must be a whole number in 2..{outputs} (the model outputs), got {num_classes!r}"
        )
    if max(classes) >= num_classes:
        raise MetricInputError(
            f"random_logit: explained class {max(classes)} is not among the num_classes={num_classes} first"
        )
    draw = np.random.RandomState(seed).randint(0, num_classes - 1, len(classes))
    other = [int(d + (d >= c)) for d, c in zip(draw, classes)]
    run = explainer(explain_func, explain_func_kwargs)
    a = attributions(maps, abs=abs, normalise=normalise).cpu()
    b = attributions(_explain(run, model, inputs, other, batch_size), abs=abs, normalise=normalise).cpu()
    both = torch.cat([a, b], dim=1)
    span = (both.amax(1) - both.amin(1)).numpy()
    return ImageScores("random_logit", ssim(a.numpy(), b.numpy(), data_range=span))


def smooth_mprt(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    explain_func: str | Callable[..., Any] | None = None,
    explain_func_kwargs: Mapping[str, Any] | None = None,
    layer_order: str = "bottom_up",
    seed: int = 42,
    nr_samples: int = 50,
    noise_magnitude: float = 0.1,
    skip_layers: bool = False,
    abs: bool = True,
    batch_size: int = 64,
) -> RandomisationResult:
    """Smooth MPRT: Spearman correlation of the given maps with the smoothed maps of the trained model
    (``"original"``) and after each randomisation step (or only the last, ``skip_layers``); the score is
    the last. Noise: ``N(0, σ²)`` with σ = ``noise_magnitude`` × the image's value range."""
    _prepare(inputs, maps, batch_size)
    if isinstance(nr_samples, bool) or not isinstance(nr_samples, (int, np.integer)) or nr_samples < 1:
        raise MetricInputError(f"smooth_mprt: nr_samples must be a whole number >= 1, got {nr_samples!r}")
    if not noise_magnitude >= 0:
        raise MetricInputError(f"smooth_mprt: noise_magnitude must be >= 0, got {noise_magnitude}")
    classes, _ = _classes(model, inputs, targets, batch_size, outputs=False)
    run = explainer(explain_func, explain_func_kwargs)
    given = attributions(maps, abs=abs, normalise=False).cpu().numpy()
    noise = np.random.RandomState(seed)

    def smoothed(net: nn.Module) -> np.ndarray:
        total = _smooth_maps(run, net, inputs, classes, noise, nr_samples, noise_magnitude, batch_size)
        return attributions(total, abs=abs, normalise=False).cpu().numpy()

    steps, values = ["original"], [spearman_rank(given, smoothed(model))]
    for name, net in _last_or_every(model, layer_order, seed, skip_layers):
        steps.append(name)
        values.append(spearman_rank(given, smoothed(net)))
    table = np.stack(values)
    return RandomisationResult("smooth_mprt", steps, table, table[-1])


def mprt(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    explain_func: str | Callable[..., Any] | None = None,
    explain_func_kwargs: Mapping[str, Any] | None = None,
    layer_order: str = "top_down",
    seed: int = 42,
    skip_layers: bool = False,
    abs: bool = True,
    batch_size: int = 64,
) -> RandomisationResult:
    """MPRT as Quantus's ``MPRT`` computes it: :func:`smooth_mprt` with one, noiseless, sample, top-down.

    (:func:`camscope.metrics.randomization_sanity` is the same cascade with camscope's own steps and
    Spearman plus SSIM.)
    """
    result = smooth_mprt(
        model,
        inputs,
        maps,
        targets,
        explain_func=explain_func,
        explain_func_kwargs=explain_func_kwargs,
        layer_order=layer_order,
        seed=seed,
        nr_samples=1,
        noise_magnitude=0.0,
        skip_layers=skip_layers,
        abs=abs,
        batch_size=batch_size,
    )
    result.name = "mprt"
    return result


def _last_or_every(model: nn.Module, layer_order: str, seed: int, last_only: bool) -> Iterator[tuple[str, nn.Module]]:
    """The randomised model after every step of the cascade, or only after the last."""
    steps = cascade_steps(model, quantus_layers(model, layer_order))
    for i, (name, net) in enumerate(cascade(model, steps, seed, module_seed=seed + 1)):
        if not last_only or i == len(steps) - 1:
            yield name, net


def _smooth_maps(
    run: Explainer,
    model: nn.Module,
    inputs: torch.Tensor,
    classes: Sequence[int],
    noise: np.random.RandomState,
    nr_samples: int,
    noise_magnitude: float,
    batch_size: int,
) -> torch.Tensor:
    """Mean map over ``nr_samples`` noisy copies (the last one the clean input), summed in sample order.

    Noisy copies are made one sample at a time and explained ``batch_size`` rows at a time across
    samples, so memory holds about one batch, whatever ``nr_samples``.
    """
    x64 = inputs.detach().double()
    flat = x64.flatten(1)
    sigma = (noise_magnitude * (flat.amax(1) - flat.amin(1))).view(-1, 1, 1, 1)
    total = torch.zeros(inputs.shape[0], *inputs.shape[-2:], dtype=torch.float64, device=inputs.device)
    pending: list[torch.Tensor] = []

    def flush() -> None:
        nonlocal total
        if not pending:
            return
        maps = _explain(run, model, torch.cat(pending), list(classes) * len(pending), batch_size)
        for sample in torch.split(maps, len(inputs)):
            total = total + sample / nr_samples
        pending.clear()

    for k in range(nr_samples):
        if k == nr_samples - 1:
            pending.append(inputs)
        else:
            draw = torch.from_numpy(noise.randn(*inputs.shape)).to(x64.device)
            pending.append((x64 + draw * sigma).to(inputs.dtype))
        if len(pending) * len(inputs) >= batch_size:
            flush()
    flush()
    return total


def discrete_entropy(a: np.ndarray, n_bins: int) -> np.ndarray:
    """Entropy of each row's histogram (``n_bins`` equal bins over the row's range), as Quantus's
    ``discrete_entropy``: ``scipy.stats.entropy`` of ``np.histogram`` counts. Per row with NumPy, whose
    bin-edge rounding decides where a value on an edge falls (a re-derived edge would move it)."""
    out = np.empty(len(a))
    for i, row in enumerate(a):
        counts = np.histogram(row, bins=n_bins)[0].astype(np.float64)
        p = counts[counts > 0] / counts.sum()
        out[i] = float(-(p * np.log(p)).sum())
    return out


def efficient_mprt(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    explain_func: str | Callable[..., Any] | None = None,
    explain_func_kwargs: Mapping[str, Any] | None = None,
    layer_order: str = "bottom_up",
    seed: int = 42,
    skip_layers: bool = True,
    abs: bool = False,
    complexity_func_kwargs: Mapping[str, Any] | None = None,
    batch_size: int = 64,
) -> RandomisationResult:
    """Efficient MPRT: ``(H_random − H_trained) / H_trained`` per image, H the discrete entropy of the
    map's histogram (``complexity_func_kwargs={"n_bins": 100}``, Quantus's default bins).

    The given maps stand for the trained model's explanations (Quantus re-explains the trained model
    with ``explain_func``: the same maps when they come from it); the randomised model is explained
    after the last step (every step with ``skip_layers=False``, kept in the result).
    """
    _prepare(inputs, maps, batch_size)
    options = dict(complexity_func_kwargs or {})
    n_bins = options.pop("n_bins", 100)
    if options:
        raise MetricInputError(
            f"efficient_mprt: complexity_func_kwargs takes only n_bins, got {', '.join(sorted(options))}"
        )
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise MetricInputError(f"efficient_mprt: n_bins must be a whole number >= 1, got {n_bins!r}")
    n_bins = int(n_bins)
    classes, _ = _classes(model, inputs, targets, batch_size, outputs=False)
    run = explainer(explain_func, explain_func_kwargs)
    steps, values = ["original"], [discrete_entropy(attributions(maps, abs=abs, normalise=False).cpu().numpy(), n_bins)]
    for name, net in _last_or_every(model, layer_order, seed, skip_layers):
        maps_r = _explain(run, net, inputs, classes, batch_size)
        steps.append(name)
        values.append(discrete_entropy(attributions(maps_r, abs=abs, normalise=False).cpu().numpy(), n_bins))
    table = np.stack(values)
    flat = (table[0] == 0).nonzero()[0].tolist()
    if flat:
        warn("efficient_mprt: the trained model's map is constant (entropy 0); the relative rise is not finite", flat)
    with np.errstate(divide="ignore", invalid="ignore"):
        rise = (table[-1] - table[0]) / table[0]
    return RandomisationResult("efficient_mprt", steps, table, rise)


_REEXPLAIN = ("explain_func", "explain_func_kwargs")
register_metric(
    "random_logit",
    random_logit,
    [Column("random_logit", higher_is_better=False)],
    params=(*_REEXPLAIN, "num_classes", "seed", "abs", "normalise", "batch_size"),
    description="SSIM of the map with a random other class's map (Quantus RandomLogit)",
)
register_metric(
    "mprt",
    mprt,
    [Column("mprt", higher_is_better=False)],
    params=(*_REEXPLAIN, "layer_order", "seed", "skip_layers", "abs", "batch_size"),
    description="Spearman of the map with the randomised model's map (Quantus MPRT)",
)
register_metric(
    "smooth_mprt",
    smooth_mprt,
    [Column("smooth_mprt", higher_is_better=False)],
    params=(*_REEXPLAIN, "layer_order", "seed", "nr_samples", "noise_magnitude", "skip_layers", "abs", "batch_size"),
    description="Spearman of the map with the randomised model's smoothed map (Quantus SmoothMPRT)",
)
register_metric(
    "efficient_mprt",
    efficient_mprt,
    [Column("efficient_mprt", higher_is_better=True)],
    params=(*_REEXPLAIN, "layer_order", "seed", "skip_layers", "abs", "complexity_func_kwargs", "batch_size"),
    description="relative rise in map entropy under a randomised model (Quantus EfficientMPRT)",
)
