"""Quantus's robustness family, batched: does the explanation stay put when the input barely moves?

Max- and avg-sensitivity (Yeh et al., NeurIPS 2019) and the local Lipschitz estimate (Alvarez-Melis &
Jaakkola, 2018), equal to Quantus 0.6.0 on the same inputs and noise, registered under Quantus's names
with its parameter names and defaults. Each re-explains ``nr_samples`` noisy copies of every image
with ``explain_func``; the noisy copies (image × sample) are explained ``batch_size`` at a time.

``explain_func`` is a camscope method name (its layers and reshape come from the model's spec) or, as
in Quantus, a callable ``explain_func(model, inputs, targets) -> maps`` with ``inputs`` a float
tensor (N, C, H, W) on the model's device, ``targets`` an int array of class indices and ``maps``
(N, H, W). Maps are divided by their own largest magnitude (``normalise``; Quantus divides by the
largest over its batch) and then made absolute (``abs``).

The noise is meant to be small. Where it changes the model's top-1 class the result says so: a
warning names the images, ``<metric>_flips`` is the fraction of samples that changed it, and with
``return_nan_when_prediction_changes`` those samples are NaN (as Quantus), which makes the image's
score NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from camscope.core.errors import MetricInputError, warn
from camscope.core.outputs import read_scores
from camscope.core.progress import steps
from camscope.core.targets import ClassifierOutputTarget, TargetSpec, model_logits
from camscope.metrics import sampling
from camscope.metrics._common import ArrayLike, check_batch_size, check_inputs, resolve, shared_forwards
from camscope.metrics.faithfulness import attributions
from camscope.metrics.registry import Column, register_metric

ExplainFunc = Callable[[nn.Module, torch.Tensor, np.ndarray], ArrayLike]


@dataclass
class RobustnessResult:
    """Per-image scores (the first summary column), each sample's value (N, nr_samples), and where
    the noisy copy changed the model's top-1 class (N, nr_samples)."""

    name: str
    scores: np.ndarray
    samples: np.ndarray
    prediction_changed: np.ndarray

    def summary(self) -> dict[str, np.ndarray]:
        return {self.name: self.scores, f"{self.name}_flips": self.prediction_changed.mean(axis=1)}


def method_explainer(name: str) -> ExplainFunc:
    """A camscope method as an ``explain_func``: the method's maps for class-index targets."""
    from camscope.methods import get_method

    cls = get_method(name)  # an unknown name fails here, before any work

    def explain(model: nn.Module, inputs: torch.Tensor, targets: np.ndarray) -> ArrayLike:
        from camscope.models import get_spec

        layers, reshape = get_spec(model).cam_layers(model) if cls.takes_layers else (None, None)
        cam = cls(model, layers, reshape)  # type: ignore[arg-type]  # layer-free methods take None, as in explain()
        return cam.compute(inputs, [ClassifierOutputTarget(int(t)) for t in targets])

    return explain


def _explainer(explain_func: str | ExplainFunc) -> ExplainFunc:
    if isinstance(explain_func, str):
        return method_explainer(explain_func)
    if callable(explain_func):
        return explain_func
    raise MetricInputError(f"explain_func must be a method name or a callable, got {type(explain_func).__name__}")


def _robustness(
    name: str,
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec,
    explain_func: str | ExplainFunc,
    nr_samples: int,
    noise: Callable[[sampling.Draws, tuple[int, ...]], torch.Tensor],
    compare: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    reduce: str,
    abs: bool,
    normalise: bool,
    return_nan_when_prediction_changes: bool,
    seed: int | None,
    batch_size: int,
) -> RobustnessResult:
    """Explain ``nr_samples`` noisy copies of each image and ``compare(maps, noisy maps, noise)`` per row."""
    maps_t = check_inputs(inputs, maps)
    assert maps_t is not None
    check_batch_size(batch_size)
    if not isinstance(nr_samples, int) or isinstance(nr_samples, bool) or nr_samples < 1:
        raise MetricInputError(f"{name}: nr_samples must be a positive integer, got {nr_samples!r}")
    explain = _explainer(explain_func)
    n = inputs.shape[0]
    with shared_forwards(model):
        resolved, logits = resolve(model, inputs, targets, batch_size, probability=False)
    if any(type(t) is not ClassifierOutputTarget for t in resolved):
        raise MetricInputError(f"{name} needs class-index targets (they are passed to explain_func)")
    classes = np.array([t.category for t in resolved if isinstance(t, ClassifierOutputTarget)])
    top1 = read_scores(logits, name).argmax(dim=-1).to(inputs.device)
    device = inputs.device
    a = torch.from_numpy(attributions(maps_t, abs, normalise)).to(device).reshape(n, -1)
    draws = sampling.Draws(seed, device)
    items = [i for _ in range(nr_samples) for i in range(n)]
    values = np.empty(len(items))
    changed = np.empty(len(items), dtype=bool)
    for start in steps(range(0, len(items), batch_size), name, bar=False):
        owners = items[start : start + batch_size]
        delta = noise(draws, (len(owners), inputs[0].numel())).to(inputs.dtype).view(-1, *inputs.shape[1:])
        noisy = inputs[owners] + delta
        with torch.inference_mode():
            flipped = model_logits(model(noisy)).argmax(dim=-1) != top1[owners]
        explained = explain(model, noisy, classes[owners])
        again = check_inputs(noisy, torch.as_tensor(explained).detach().float().cpu())
        assert again is not None
        rows = torch.from_numpy(attributions(again, abs, normalise)).to(device).reshape(len(owners), -1)
        values[start : start + len(owners)] = compare(a[owners], rows, delta).double().cpu().numpy()
        changed[start : start + len(owners)] = flipped.cpu().numpy()
    samples = values.reshape(nr_samples, n).T
    flips = changed.reshape(nr_samples, n).T
    if flips.any():
        warn(
            f"{name}: the noise changed the model's top-1 class in {int(flips.sum())} of {flips.size} samples; "
            "it is not a small perturbation for this model (see the _flips column)",
            np.flatnonzero(flips.any(axis=1)).tolist(),
        )
    if return_nan_when_prediction_changes:
        samples = np.where(flips, np.nan, samples)
        scores = samples.max(axis=1) if reduce == "max" else samples.mean(axis=1)
    else:
        scores = np.nanmax(samples, axis=1) if reduce == "max" else np.nanmean(samples, axis=1)
    return RobustnessResult(name, scores, samples, flips)


def _uniform_noise(
    lower_bound: float, upper_bound: float | None
) -> Callable[[sampling.Draws, tuple[int, ...]], torch.Tensor]:
    """Quantus's ``batch_uniform_noise``: U(−lower, lower), or U(lower, upper) when ``upper_bound`` is set."""
    if upper_bound is not None and upper_bound <= lower_bound:
        raise MetricInputError(f"upper_bound ({upper_bound}) must be larger than lower_bound ({lower_bound})")
    low, high = (-lower_bound, lower_bound) if upper_bound is None else (lower_bound, upper_bound)
    return lambda draws, shape: draws.uniform(shape, low, high)


def _relative_change(a: torch.Tensor, b: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """‖a − b‖ / ‖a‖ per row (Quantus's difference and Frobenius norms)."""
    change: torch.Tensor = torch.linalg.vector_norm((a - b).double(), dim=1) / torch.linalg.vector_norm(
        a.double(), dim=1
    )
    return change


def _sensitivity(
    name: str,
    reduce: str,
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec,
    explain_func: str | ExplainFunc,
    nr_samples: int,
    lower_bound: float,
    upper_bound: float | None,
    abs: bool,
    normalise: bool,
    return_nan_when_prediction_changes: bool,
    seed: int | None,
    batch_size: int,
) -> RobustnessResult:
    noise = _uniform_noise(lower_bound, upper_bound)
    return _robustness(
        name, model, inputs, maps, targets, explain_func, nr_samples, noise, _relative_change, reduce,
        abs, normalise, return_nan_when_prediction_changes, seed, batch_size,
    )  # fmt: skip


def max_sensitivity(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    explain_func: str | ExplainFunc = "gradcam",
    nr_samples: int = 200,
    lower_bound: float = 0.2,
    upper_bound: float | None = None,
    abs: bool = False,
    normalise: bool = False,
    return_nan_when_prediction_changes: bool = False,
    seed: int | None = None,
    batch_size: int = 64,
) -> RobustnessResult:
    """Max-sensitivity (Yeh et al., NeurIPS 2019): lower is better.

    ``max_j ‖a − a_j‖ / ‖a‖`` over ``nr_samples`` re-explanations ``a_j`` of the input plus uniform noise
    (U(−lower_bound, lower_bound) on every feature, or U(lower_bound, upper_bound)).
    """
    return _sensitivity(
        "max_sensitivity", "max", model, inputs, maps, targets, explain_func, nr_samples, lower_bound,
        upper_bound, abs, normalise, return_nan_when_prediction_changes, seed, batch_size,
    )  # fmt: skip


def avg_sensitivity(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    explain_func: str | ExplainFunc = "gradcam",
    nr_samples: int = 200,
    lower_bound: float = 0.2,
    upper_bound: float | None = None,
    abs: bool = False,
    normalise: bool = False,
    return_nan_when_prediction_changes: bool = False,
    seed: int | None = None,
    batch_size: int = 64,
) -> RobustnessResult:
    """Avg-sensitivity (Yeh et al., NeurIPS 2019): lower is better; :func:`max_sensitivity` with the mean."""
    return _sensitivity(
        "avg_sensitivity", "mean", model, inputs, maps, targets, explain_func, nr_samples, lower_bound,
        upper_bound, abs, normalise, return_nan_when_prediction_changes, seed, batch_size,
    )  # fmt: skip


def _lipschitz_ratio(a: torch.Tensor, b: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """‖a − b‖₂ / (‖x − x'‖₂ + 1e-10) per row (Quantus's ``lipschitz_constant``, Euclidean distances)."""
    distance = torch.linalg.vector_norm(noise.reshape(noise.shape[0], -1).double(), dim=1)
    ratio: torch.Tensor = torch.linalg.vector_norm((a - b).double(), dim=1) / (distance + 1e-10)
    return ratio


def local_lipschitz_estimate(
    model: nn.Module,
    inputs: torch.Tensor,
    maps: ArrayLike,
    targets: TargetSpec = None,
    *,
    explain_func: str | ExplainFunc = "gradcam",
    nr_samples: int = 200,
    perturb_mean: float = 0.0,
    perturb_std: float = 0.1,
    abs: bool = False,
    normalise: bool = True,
    return_nan_when_prediction_changes: bool = False,
    seed: int | None = None,
    batch_size: int = 64,
) -> RobustnessResult:
    """Local Lipschitz estimate (Alvarez-Melis & Jaakkola, 2018): lower is better.

    ``max_j ‖a − a_j‖₂ / ‖x − x_j‖₂`` over ``nr_samples`` inputs ``x_j = x + N(perturb_mean, perturb_std²)``.
    """
    if perturb_std < 0:
        raise MetricInputError(f"perturb_std must not be negative, got {perturb_std}")
    return _robustness(
        "local_lipschitz_estimate", model, inputs, maps, targets, explain_func, nr_samples,
        lambda draws, shape: draws.normal(shape, perturb_mean, perturb_std), _lipschitz_ratio, "max",
        abs, normalise, return_nan_when_prediction_changes, seed, batch_size,
    )  # fmt: skip


_COMMON: Sequence[str] = (
    "explain_func", "nr_samples", "abs", "normalise", "return_nan_when_prediction_changes", "seed", "batch_size",
)  # fmt: skip
for _func, _noise, _description in (
    (max_sensitivity, ("lower_bound", "upper_bound"), "largest relative change of the map under uniform noise"),
    (avg_sensitivity, ("lower_bound", "upper_bound"), "mean relative change of the map under uniform noise"),
    (
        local_lipschitz_estimate,
        ("perturb_mean", "perturb_std"),
        "largest ratio of map change to input change under Gaussian noise",
    ),
):
    _name = _func.__name__
    register_metric(
        _name,
        _func,
        [Column(_name, higher_is_better=False), Column(f"{_name}_flips", higher_is_better=False)],
        params=(*_noise, *_COMMON),
        description=f"Quantus {_description}",
    )
