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

The keyword parameters are declared once, as dataclasses (:mod:`camscope.metrics.params`): the
family's shared ones in :class:`RandomisationParams`, the MPRT family's in :class:`CascadeParams`, each
metric's own (and its Quantus defaults) in a subclass. The MPRT family takes Quantus's ``normalise`` and
ignores it: a positive rescaling of each map is invisible to a rank correlation and to a histogram over
the map's own range.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from camscope.core.errors import MetricInputError, TargetError, warn
from camscope.core.outputs import read_output, read_scores
from camscope.core.targets import TargetSpec, class_index, resolve_targets
from camscope.metrics._common import ArrayLike, ImageScores, attributions, check_inputs, image_logits
from camscope.metrics.params import Reexplaining, keywords, positive_int
from camscope.metrics.registry import Column, register_metric
from camscope.metrics.sanity import cascade, cascade_steps, spearman_rank, ssim

Explainer = Callable[[nn.Module, torch.Tensor, Sequence[int]], torch.Tensor]
LAYER_ORDERS = ("bottom_up", "top_down")
R = TypeVar("R")


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
    from camscope.methods import get_method

    cls = get_method(explain_func)
    layers = kwargs.pop("layers", None)
    unknown = sorted(set(kwargs) - set(cls.params))
    if unknown:
        raise MetricInputError(
            f"explain_func_kwargs: method {explain_func!r} takes no parameter(s) {', '.join(unknown)}"
        )

    def run_method(model: nn.Module, inputs: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
        target: Any = None
        reshape: Any = None
        if cls.takes_layers:
            target, reshape = target_layers(model, layers, (int(inputs.shape[-2]), int(inputs.shape[-1])))
        return cls(model, target, reshape, **kwargs).compute(inputs, list(classes))  # stays on the device

    return run_method


# model -> {(layer names, input size): (layer paths, their modules (weak), reshape transform)}
_LAYERS: weakref.WeakKeyDictionary[nn.Module, dict[Any, tuple[list[str], list[weakref.ref[nn.Module]], Any]]] = (
    weakref.WeakKeyDictionary()
)


def target_layers(model: nn.Module, layers: Sequence[Any] | None, hw: tuple[int, int]) -> tuple[list[str], Any]:
    """Paths of the layers to explain at (given by name, or inferred) and their reshape transform.

    Remembered per model and input size: resolving them runs a probe forward pass, which the metrics would
    otherwise repeat on every call (every batch of a sweep). A remembered answer is used only while the
    same module objects still sit at those paths.
    """
    from camscope.core.layer_paths import module_path
    from camscope.models.layers import cam_layers_from_names, infer_cam_layers

    names = tuple(layers) if layers else None
    cacheable = names is None or all(isinstance(name, str) for name in names)
    known = _LAYERS.setdefault(model, {})
    hit = known.get((names, hw)) if cacheable else None
    if hit is not None:
        paths, modules, reshape = hit
        try:
            if all(model.get_submodule(path) is module() for path, module in zip(paths, modules)):
                return paths, reshape
        except AttributeError:
            pass
    found, reshape = cam_layers_from_names(model, list(layers), hw) if layers else infer_cam_layers(model, hw)
    paths = [module_path(model, m) for m in found]
    if cacheable:
        known[(names, hw)] = (paths, [weakref.ref(m) for m in found], reshape)
    return paths, reshape


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


def _classes(model: nn.Module, inputs: torch.Tensor, targets: TargetSpec, batch_size: int) -> list[int]:
    """Each image's class: class targets as given (no forward pass), else resolved on the logits (None:
    the top-1)."""
    if isinstance(targets, Sequence) and len(targets) == len(inputs):
        given = [class_index(t) for t in targets]
        if all(index is not None for index in given):
            return [int(index) for index in given if index is not None]
    classes = []
    for t in resolve_targets(targets, image_logits(model, inputs, batch_size)):
        index = class_index(getattr(t, "category", None))
        if index is None:
            raise MetricInputError("randomisation metrics explain classes: give class targets (or None for the top-1)")
        classes.append(index)
    return classes


@dataclass(frozen=True)
class RandomisationParams(Reexplaining):
    """What every randomisation metric takes; Quantus seeds them all with 42."""

    seed: int = 42


@dataclass(frozen=True)
class RandomLogitParams(RandomisationParams):
    num_classes: int | None = None


@dataclass(frozen=True)
class CascadeParams(RandomisationParams):
    """The MPRT family: which layers are randomised in which order, and whether every step is explained.

    ``normalise`` is taken, as Quantus takes it, and changes nothing: a positive rescaling of each map
    is invisible to a rank correlation and to a histogram over the map's own range.
    """

    abs: bool = True
    layer_order: str = "bottom_up"
    skip_layers: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layer_order not in LAYER_ORDERS:
            raise MetricInputError(f"layer_order must be one of {', '.join(LAYER_ORDERS)}, got {self.layer_order!r}")


@dataclass(frozen=True)
class SmoothMPRTParams(CascadeParams):
    nr_samples: int = 50
    noise_magnitude: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        positive_int(self.nr_samples, "nr_samples")
        if not self.noise_magnitude >= 0:
            raise MetricInputError(f"noise_magnitude must be >= 0, got {self.noise_magnitude}")


@dataclass(frozen=True)
class MPRTParams(CascadeParams):
    layer_order: str = "top_down"


@dataclass(frozen=True)
class EfficientMPRTParams(CascadeParams):
    abs: bool = False
    skip_layers: bool = True
    complexity_func_kwargs: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.bins()

    def bins(self) -> int:
        """Bins of the entropy's histogram (Quantus's default: 100), the only complexity option."""
        options = dict(self.complexity_func_kwargs or {})
        n_bins = options.pop("n_bins", 100)
        if options:
            raise MetricInputError(f"complexity_func_kwargs takes only n_bins, got {', '.join(sorted(options))}")
        return positive_int(n_bins, "n_bins")


P = TypeVar("P", bound=RandomisationParams)


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


Score = Callable[[nn.Module, torch.Tensor, ArrayLike, list[int], P], R]


def _metric(params: type[P]) -> Callable[[Score[P, R]], Callable[..., R]]:
    """``score(model, inputs, maps, classes, p)`` as the public metric ``(model, inputs, maps, targets=None,
    *, <the fields of params>)``: the inputs and maps checked and the targets resolved to classes once here."""

    default = params()

    def decorate(score: Score[P, R]) -> Callable[..., R]:
        def metric(
            model: nn.Module, inputs: torch.Tensor, maps: ArrayLike, targets: TargetSpec = None, p: P = default
        ) -> R:
            check_inputs(inputs, maps)
            return score(model, inputs, maps, _classes(model, inputs, targets, p.batch_size), p)

        metric.__name__ = metric.__qualname__ = score.__name__
        metric.__doc__ = score.__doc__
        metric.__annotations__["return"] = score.__annotations__["return"]  # help() shows the result type
        return keywords(params)(metric)

    return decorate


def _declared_count(model: nn.Module) -> int | None:
    declared = getattr(model, "num_classes", None)
    if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
        return declared
    return None


@contextmanager
def _output_widths(model: nn.Module) -> Iterator[list[int]]:
    """The class dimension (dim 1) of each score output ``model`` gives inside the block: a forward hook,
    so the count comes with forwards that run anyway."""
    widths: list[int] = []

    def record(module: nn.Module, args: Any, output: Any) -> None:
        try:
            scores = read_output(output)
        except TargetError:  # an output no metric reads: nothing to count
            return
        if isinstance(scores, torch.Tensor) and scores.ndim >= 2:
            widths.append(int(scores.shape[1]))

    handle = model.register_forward_hook(record)
    try:
        yield widths
    finally:
        handle.remove()


def _check_class_count(num_classes: Any, outputs: int | None) -> int:
    """``num_classes`` as an int, if it is one in 2..``outputs`` (no upper bound while the outputs are unknown)."""
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 2
        or (outputs is not None and num_classes > outputs)
    ):
        span = "2.." if outputs is None else f"2..{outputs} (the model outputs)"
        raise MetricInputError(f"random_logit: num_classes must be a whole number in {span}, got {num_classes!r}")
    return int(num_classes)


@_metric(RandomLogitParams)
def random_logit(
    model: nn.Module, inputs: torch.Tensor, maps: ArrayLike, classes: list[int], p: RandomLogitParams
) -> ImageScores:
    """SSIM between each map and the map of a random other class (the maps flattened, as Quantus
    compares them: a 1-D SSIM with window 7 and the pair's own value range).

    The other class is uniform over the ``num_classes`` first classes minus the explained one (default:
    all the model's outputs; Quantus's default is 1000), drawn as Quantus draws it: NumPy's legacy
    ``randint`` seeded with ``seed`` (Quantus reseeds every batch of 64 images; equal up to 64 images).
    The model's number of outputs is its ``num_classes`` where it declares one (timm), else read off one
    image's forward pass when ``num_classes`` is not given, else off the re-explanation's own forwards.
    """
    outputs = _declared_count(model)
    if p.num_classes is None and outputs is None:
        outputs = int(read_scores(image_logits(model, inputs[:1], p.batch_size), "random_logit").shape[1])
    num_classes = _check_class_count(outputs if p.num_classes is None else p.num_classes, outputs)
    if max(classes) >= num_classes:
        raise MetricInputError(
            f"random_logit: explained class {max(classes)} is not among the num_classes={num_classes} first"
        )
    draw = np.random.RandomState(p.seed).randint(0, num_classes - 1, len(classes))
    other = [int(d + (d >= c)) for d, c in zip(draw, classes)]
    run = explainer(p.explain_func, p.explain_func_kwargs)
    a = attributions(maps, abs=p.abs, normalise=p.normalise).cpu()
    # a given num_classes is checked against the outputs the re-explanation's own forwards show (an extra
    # forward would cost a third of the metric), also when a class beyond them broke the explanation
    with _output_widths(model) as widths:
        try:
            again = _explain(run, model, inputs, other, p.batch_size)
        except Exception:
            _check_class_count(num_classes, min(widths, default=None))
            raise
    _check_class_count(num_classes, min(widths, default=None))
    b = attributions(again, abs=p.abs, normalise=p.normalise).cpu()
    both = torch.cat([a, b], dim=1)
    span = (both.amax(1) - both.amin(1)).numpy()
    return ImageScores("random_logit", ssim(a.numpy(), b.numpy(), data_range=span))


@_metric(SmoothMPRTParams)
def smooth_mprt(
    model: nn.Module, inputs: torch.Tensor, maps: ArrayLike, classes: list[int], p: SmoothMPRTParams
) -> RandomisationResult:
    """Smooth MPRT: Spearman correlation of the given maps with the smoothed maps of the trained model
    (``"original"``) and after each randomisation step (or only the last, ``skip_layers``); the score is
    the last. Noise: ``N(0, σ²)`` with σ = ``noise_magnitude`` × the image's value range."""
    return _correlations("smooth_mprt", model, inputs, maps, classes, p)


@_metric(MPRTParams)
def mprt(
    model: nn.Module, inputs: torch.Tensor, maps: ArrayLike, classes: list[int], p: MPRTParams
) -> RandomisationResult:
    """MPRT as Quantus's ``MPRT`` computes it: :func:`smooth_mprt` with one, noiseless, sample, top-down.

    (:func:`camscope.metrics.randomization_sanity` is the same cascade with camscope's own steps and
    Spearman plus SSIM.)
    """
    return _correlations("mprt", model, inputs, maps, classes, p)


def _correlations(
    name: str, model: nn.Module, inputs: torch.Tensor, maps: ArrayLike, classes: list[int], p: CascadeParams
) -> RandomisationResult:
    given = attributions(maps, abs=p.abs, normalise=False).cpu().numpy()
    return _over_cascade(name, model, inputs, classes, p, lambda m: spearman_rank(given, m), None)


@_metric(EfficientMPRTParams)
def efficient_mprt(
    model: nn.Module, inputs: torch.Tensor, maps: ArrayLike, classes: list[int], p: EfficientMPRTParams
) -> RandomisationResult:
    """Efficient MPRT: ``(H_random − H_trained) / H_trained`` per image, H the discrete entropy of the
    map's histogram (``complexity_func_kwargs={"n_bins": 100}``, Quantus's default bins).

    The given maps stand for the trained model's explanations (Quantus re-explains the trained model
    with ``explain_func``: the same maps when they come from it); the randomised model is explained
    after the last step (every step with ``skip_layers=False``, kept in the result).
    """
    n_bins = p.bins()

    def entropy(m: np.ndarray) -> np.ndarray:
        return discrete_entropy(m, n_bins)

    trained = entropy(attributions(maps, abs=p.abs, normalise=False).cpu().numpy())
    result = _over_cascade("efficient_mprt", model, inputs, classes, p, entropy, trained)
    table = result.values
    flat = (table[0] == 0).nonzero()[0].tolist()
    if flat:
        warn("efficient_mprt: the trained model's map is constant (entropy 0); the relative rise is not finite", flat)
    with np.errstate(divide="ignore", invalid="ignore"):
        result.scores = (table[-1] - table[0]) / table[0]
    return result


def _over_cascade(
    name: str,
    model: nn.Module,
    inputs: torch.Tensor,
    classes: list[int],
    p: CascadeParams,
    measure: Callable[[np.ndarray], np.ndarray],
    trained: np.ndarray | None,
) -> RandomisationResult:
    """The MPRT family's one loop: ``measure`` (per image) of the maps of the trained model (``trained``
    when the caller's maps stand for them) and of the model randomised step by step (only the last step
    with ``skip_layers``), each map the mean over the noisy copies of Smooth MPRT (one clean copy
    otherwise). The score is the last step's value."""
    nr_samples, noise_magnitude = (p.nr_samples, p.noise_magnitude) if isinstance(p, SmoothMPRTParams) else (1, 0.0)
    run = explainer(p.explain_func, p.explain_func_kwargs)
    noise = np.random.RandomState(p.seed)

    def explained(net: nn.Module) -> np.ndarray:
        total = _smooth_maps(run, net, inputs, classes, noise, nr_samples, noise_magnitude, p.batch_size)
        return measure(attributions(total, abs=p.abs, normalise=False).cpu().numpy())

    steps, values = ["original"], [explained(model) if trained is None else trained]
    layers = quantus_layers(model, p.layer_order)
    cascade_of = cascade_steps(model, layers)
    with closing(cascade(model, cascade_of, p.seed, module_seed=p.seed + 1)) as randomised:
        for i, (step, net) in enumerate(randomised):
            if not p.skip_layers or i == len(cascade_of) - 1:
                steps.append(step)
                values.append(explained(net))
    table = np.stack(values)
    return RandomisationResult(name, steps, table, table[-1])


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


for _name, _higher, _description in (
    ("random_logit", False, "SSIM of the map with a random other class's map (Quantus RandomLogit)"),
    ("mprt", False, "Spearman of the map with the randomised model's map (Quantus MPRT)"),
    ("smooth_mprt", False, "Spearman of the map with the randomised model's smoothed map (Quantus SmoothMPRT)"),
    ("efficient_mprt", True, "relative rise in map entropy under a randomised model (Quantus EfficientMPRT)"),
):
    register_metric(_name, globals()[_name], [Column(_name, higher_is_better=_higher)], description=_description)
