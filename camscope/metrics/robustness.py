"""Quantus's robustness family, batched: does the explanation stay put when the input barely moves?

Max- and avg-sensitivity (Yeh et al., NeurIPS 2019) and the local Lipschitz estimate (Alvarez-Melis &
Jaakkola, 2018), equal to Quantus 0.6.0 on the same inputs and noise, registered under Quantus's names
with its parameter names and defaults. Each re-explains ``nr_samples`` noisy copies of every image
with ``explain_func``; the noisy copies (image × sample) are explained ``batch_size`` at a time.

``explain_func`` is a camscope method name (``explain_func_kwargs``: its ``layers`` as paths, else the
model spec's, and its constructor parameters) or, as in Quantus, a callable
``explain_func(model, inputs, targets, **explain_func_kwargs) -> maps`` with ``inputs`` a float tensor
(N, C, H, W) on the model's device, ``targets`` an int array of class indices and ``maps`` (N, H, W).
Maps are divided by their own largest magnitude (``normalise``; Quantus divides by the largest over
its batch) and then made absolute (``abs``).

The noise is meant to be small. Where it changes the model's top-1 class the result says so: a
warning names the images, ``<metric>_flips`` is the fraction of samples that changed it, and with
``return_nan_when_prediction_changes`` those samples are NaN (as Quantus), which makes the image's
score NaN. The noisy copies' logits are read from the explain function's own forward pass when it
runs the model on exactly those copies (every camscope method and gradient explainer does), so the
check costs no forward of its own; otherwise they get one inference forward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from camscope.core.errors import MetricInputError, warn
from camscope.core.outputs import read_scores
from camscope.core.progress import steps
from camscope.core.targets import ClassifierOutputTarget, TargetSpec, model_logits
from camscope.metrics import sampling
from camscope.metrics._common import ArrayLike, check_inputs, check_maps, resolve, shared_forwards
from camscope.metrics.faithfulness import attributions
from camscope.metrics.params import Reexplaining, keywords, positive_int
from camscope.metrics.registry import Column, register_metric

if TYPE_CHECKING:
    from camscope.methods.base import BaseCAM

ExplainFunc = Callable[..., ArrayLike]
Explainer = Callable[[nn.Module, torch.Tensor, np.ndarray], ArrayLike]


@dataclass(frozen=True)
class RobustnessParams(Reexplaining):
    """The family's parameters (Quantus's names and defaults); the noise is each metric's own."""

    explain_func: str | ExplainFunc | None = "gradcam"
    nr_samples: int = 200
    return_nan_when_prediction_changes: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        positive_int(self.nr_samples, "nr_samples")
        if not isinstance(self.explain_func, str) and not callable(self.explain_func):
            raise MetricInputError(
                f"explain_func must be a method name or a callable, got {type(self.explain_func).__name__}"
            )

    def noise(self, draws: sampling.Draws, shape: tuple[int, ...]) -> torch.Tensor:
        """The noise added to the flattened copies (rows × features), float32: each metric's own."""
        raise NotImplementedError


@dataclass(frozen=True)
class SensitivityParams(RobustnessParams):
    """Uniform noise: U(−lower_bound, lower_bound) on every feature, or U(lower_bound, upper_bound)."""

    normalise: bool = False
    lower_bound: float = 0.2
    upper_bound: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.upper_bound is not None and self.upper_bound <= self.lower_bound:
            raise MetricInputError(
                f"upper_bound ({self.upper_bound}) must be larger than lower_bound ({self.lower_bound})"
            )

    def noise(self, draws: sampling.Draws, shape: tuple[int, ...]) -> torch.Tensor:
        """Quantus's ``batch_uniform_noise``."""
        if self.upper_bound is None:
            return draws.uniform(shape, -self.lower_bound, self.lower_bound)
        return draws.uniform(shape, self.lower_bound, self.upper_bound)


@dataclass(frozen=True)
class LipschitzParams(RobustnessParams):
    """Gaussian noise N(perturb_mean, perturb_std²) on every feature."""

    perturb_mean: float = 0.0
    perturb_std: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.perturb_std < 0:
            raise MetricInputError(f"perturb_std must not be negative, got {self.perturb_std}")

    def noise(self, draws: sampling.Draws, shape: tuple[int, ...]) -> torch.Tensor:
        return draws.normal(shape, self.perturb_mean, self.perturb_std)


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


def method_explainer(name: str, explain_func_kwargs: Mapping[str, Any] | None = None) -> Explainer:
    """A camscope method as an ``explain_func``: the method's maps for class-index targets.

    ``explain_func_kwargs``: ``layers`` (paths; default: the model spec's layers) and the method's
    constructor parameters. The method is built on the first call and reused while the model is the same.
    """
    from camscope.methods import get_method

    cls = get_method(name)  # an unknown name fails here, before any work
    options = dict(explain_func_kwargs or {})
    layers = options.pop("layers", None)
    unknown = sorted(set(options) - set(cls.params))
    if unknown:
        raise MetricInputError(f"explain_func_kwargs: method {name!r} takes no parameter(s) {', '.join(unknown)}")
    built: list[BaseCAM] = []  # the method object, for the model it was built for

    def explain(model: nn.Module, inputs: torch.Tensor, targets: np.ndarray) -> ArrayLike:
        from camscope.models import get_spec
        from camscope.models.layers import cam_layers_from_names

        if not built or built[0].model is not model:
            found: tuple[Any, Any] = (None, None)
            if cls.takes_layers:
                hw = (int(inputs.shape[-2]), int(inputs.shape[-1]))
                found = cam_layers_from_names(model, list(layers), hw) if layers else get_spec(model).cam_layers(model)
            built[:] = [cls(model, *found, **options)]
        return built[0].compute(inputs, [ClassifierOutputTarget(int(t)) for t in targets])

    return explain


def _explainer(p: RobustnessParams) -> Explainer:
    if isinstance(p.explain_func, str):
        return method_explainer(p.explain_func, p.explain_func_kwargs)
    func = p.explain_func
    assert func is not None  # __post_init__ took a name or a callable
    kwargs = dict(p.explain_func_kwargs or {})
    return lambda model, inputs, targets: func(model, inputs, targets, **kwargs)


@contextlib.contextmanager
def _logits_of(model: nn.Module, batch: torch.Tensor) -> Iterator[list[torch.Tensor]]:
    """Within the block, the logits of the model's first forward on exactly ``batch`` (a list, empty
    until that forward runs): the explain function's own forward, read instead of run again."""
    seen: list[torch.Tensor] = []

    def read(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        x = args[0] if args else None
        if (
            not seen
            and isinstance(x, torch.Tensor)
            and x.shape == batch.shape
            and x.dtype == batch.dtype
            and x.device == batch.device
            and torch.equal(x.detach(), batch)
        ):
            seen.append(model_logits(output).detach())

    handle = model.register_forward_hook(read)
    try:
        yield seen
    finally:
        handle.remove()


def _relative_change(a: torch.Tensor, b: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """‖a − b‖ / ‖a‖ per row (Quantus's difference and Frobenius norms)."""
    change: torch.Tensor = torch.linalg.vector_norm((a - b).double(), dim=1) / torch.linalg.vector_norm(
        a.double(), dim=1
    )
    return change


def _lipschitz_ratio(a: torch.Tensor, b: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """‖a − b‖₂ / (‖x − x'‖₂ + 1e-10) per row (Quantus's ``lipschitz_constant``, Euclidean distances)."""
    distance = torch.linalg.vector_norm(noise.reshape(noise.shape[0], -1).double(), dim=1)
    ratio: torch.Tensor = torch.linalg.vector_norm((a - b).double(), dim=1) / (distance + 1e-10)
    return ratio


Compare = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _robustness_metric(
    name: str, reduce: str, compare: Compare, params: type[RobustnessParams], description: str, doc: str
) -> Callable[..., RobustnessResult]:
    """The public metric ``name``, registered: ``compare(maps, noisy maps, noise)`` per sample, reduced by
    ``reduce`` over the samples (max- and avg-sensitivity differ only there)."""
    unused = params()  # @keywords always passes the caller's; a default keeps ``targets`` optional

    def metric(
        model: nn.Module,
        inputs: torch.Tensor,
        maps: ArrayLike,
        targets: TargetSpec = None,
        p: RobustnessParams = unused,
    ) -> RobustnessResult:
        maps_t = check_inputs(inputs, maps)
        assert maps_t is not None
        explain = _explainer(p)
        n, nr_samples = inputs.shape[0], p.nr_samples
        with shared_forwards(model):
            resolved, logits = resolve(model, inputs, targets, p.batch_size, probability=False)
        if any(type(t) is not ClassifierOutputTarget for t in resolved):
            raise MetricInputError(f"{name} needs class-index targets (they are passed to explain_func)")
        classes = np.array([t.category for t in resolved if isinstance(t, ClassifierOutputTarget)])
        device = inputs.device
        top1 = read_scores(logits, name).argmax(dim=-1).to(device)
        a = torch.from_numpy(attributions(maps_t, p.abs, p.normalise)).to(device).reshape(n, -1)
        draws = sampling.Draws(p.seed, device)
        items = [i for _ in range(nr_samples) for i in range(n)]
        values = np.empty(len(items))
        changed = np.empty(len(items), dtype=bool)
        for start in steps(range(0, len(items), p.batch_size), name, bar=False):
            owners = items[start : start + p.batch_size]
            delta = p.noise(draws, (len(owners), inputs[0].numel())).to(inputs.dtype).view(-1, *inputs.shape[1:])
            noisy = inputs[owners] + delta
            with _logits_of(model, noisy) as seen:
                explained = explain(model, noisy, classes[owners])
            if not seen:  # the explain function ran the model on something else (or not at all)
                with torch.inference_mode():
                    seen.append(model_logits(model(noisy)))
            again = check_maps(torch.as_tensor(explained).detach(), (len(owners), *inputs.shape[2:]))
            rows = torch.from_numpy(attributions(again, p.abs, p.normalise)).to(device).reshape(len(owners), -1)
            values[start : start + len(owners)] = compare(a[owners], rows, delta).double().cpu().numpy()
            changed[start : start + len(owners)] = (seen[0].argmax(dim=-1) != top1[owners]).cpu().numpy()
        samples = values.reshape(nr_samples, n).T
        flips = changed.reshape(nr_samples, n).T
        if flips.any():
            warn(
                f"{name}: the noise changed the model's top-1 class in {int(flips.sum())} of {flips.size} samples; "
                "it is not a small perturbation for this model (see the _flips column)",
                np.flatnonzero(flips.any(axis=1)).tolist(),
                stacklevel=3,  # the caller's line, past the @keywords wrapper
            )
        if p.return_nan_when_prediction_changes:
            samples = np.where(flips, np.nan, samples)
            scores = samples.max(axis=1) if reduce == "max" else samples.mean(axis=1)
        else:
            scores = np.nanmax(samples, axis=1) if reduce == "max" else np.nanmean(samples, axis=1)
        return RobustnessResult(name, scores, samples, flips)

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = doc
    public = keywords(params)(metric)
    register_metric(
        name,
        public,
        [Column(name, higher_is_better=False), Column(f"{name}_flips", higher_is_better=False)],
        description=f"Quantus {description}",
    )
    return public


max_sensitivity = _robustness_metric(
    "max_sensitivity",
    "max",
    _relative_change,
    SensitivityParams,
    "largest relative change of the map under uniform noise",
    """Max-sensitivity (Yeh et al., NeurIPS 2019): lower is better.

    ``max_j ‖a − a_j‖ / ‖a‖`` over ``nr_samples`` re-explanations ``a_j`` of the input plus uniform noise
    (U(−lower_bound, lower_bound) on every feature, or U(lower_bound, upper_bound)).
    """,
)
avg_sensitivity = _robustness_metric(
    "avg_sensitivity",
    "mean",
    _relative_change,
    SensitivityParams,
    "mean relative change of the map under uniform noise",
    """Avg-sensitivity (Yeh et al., NeurIPS 2019): lower is better; :func:`max_sensitivity` with the mean.""",
)
local_lipschitz_estimate = _robustness_metric(
    "local_lipschitz_estimate",
    "max",
    _lipschitz_ratio,
    LipschitzParams,
    "largest ratio of map change to input change under Gaussian noise",
    """Local Lipschitz estimate (Alvarez-Melis & Jaakkola, 2018): lower is better.

    ``max_j ‖a − a_j‖₂ / ‖x − x_j‖₂`` over ``nr_samples`` inputs ``x_j = x + N(perturb_mean, perturb_std²)``.
    """,
)
