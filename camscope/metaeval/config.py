"""What a meta-evaluation runs: models, methods, metrics and their settings, images, perturbations.

Metrics default to *every registered metric* at run time (:func:`camscope.metrics.metric_names`), so a
metric registered later is evaluated without a change here; a preset only sets parameters where a
metric's default would blow the time budget (finer deletion steps, more ROAD percentages), and says so in
its results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from camscope.core.errors import InputError

# Methods left out of "every method": RELAX draws thousands of masked forwards per image (≈ 6 s per
# image on a mini, 100× Grad-CAM) and explains an embedding, not the class.
EXCLUDED_METHODS: tuple[str, ...] = ("relax",)
PERTURBATIONS: tuple[str, ...] = ("input", "model")

# Coarser than the metrics' defaults, to fit 9 models in the budget: deletion/insertion in 8 steps of 512
# pixels (the demo's setting), ROAD at three removal fractions (its noisy linear imputation costs more
# than the forward of a mini: ~25 ms per image and fraction).
FAST_METRIC_PARAMS: dict[str, dict[str, Any]] = {
    "deletion": {"step": 512},
    "insertion": {"step": 512},
    "road": {"percentages": (20, 50, 80)},
}


@dataclass(frozen=True)
class MetaevalConfig:
    """One meta-evaluation. ``methods``/``metrics`` None: every registered one (methods less
    :data:`EXCLUDED_METHODS`; attention methods only on models that have attention)."""

    models: tuple[str, ...]
    images: int = 24
    seed: int = 11  # the generator seed: fresh scenes, disjoint from the minis' training seeds
    shard_size: int = 8
    methods: tuple[str, ...] | None = None
    metrics: tuple[str, ...] | None = None
    metric_params: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(FAST_METRIC_PARAMS))
    perturbations: tuple[str, ...] = PERTURBATIONS
    input_noise: float = 0.01  # σ of the pixel noise, in [0, 1] units (≈ 2.5 grey levels)
    model_noise: float = 0.01  # σ of the multiplicative weight noise
    disrupt_cell: int = 8  # side of the map cells shuffled by the disruptive perturbation (the CAM grid)
    batch_size: int = 128
    bootstrap: int = 1000

    def __post_init__(self) -> None:
        if not self.models:
            raise InputError("a meta-evaluation needs at least one model")
        if self.images < 2:
            raise InputError(f"a meta-evaluation needs at least 2 images, got {self.images}")
        if self.shard_size < 1:
            raise InputError(f"shard_size must be >= 1, got {self.shard_size}")
        if self.bootstrap < 10:
            raise InputError(f"bootstrap needs at least 10 resamples for an interval, got {self.bootstrap}")
        unknown = set(self.perturbations) - set(PERTURBATIONS)
        if unknown:
            raise InputError(f"unknown perturbation(s) {sorted(unknown)}; choose from {list(PERTURBATIONS)}")

    def resolved_methods(self) -> tuple[str, ...]:
        from camscope.methods import get_method, method_names

        if self.methods is not None:
            return tuple(get_method(m).name for m in self.methods)
        return tuple(m for m in method_names() if m not in EXCLUDED_METHODS)

    def resolved_metrics(self) -> tuple[str, ...]:
        from camscope.metrics import get_metric, metric_names

        if self.metrics is not None:
            return tuple(get_metric(m).name for m in self.metrics)
        return tuple(metric_names())

    def as_dict(self) -> dict[str, Any]:
        """The settings with methods and metrics resolved: what the results were computed with."""
        raw = asdict(self)
        raw["methods"], raw["metrics"] = list(self.resolved_methods()), list(self.resolved_metrics())
        raw["metric_params"] = {k: v for k, v in self.metric_params.items() if k in raw["metrics"]}
        resolved: dict[str, Any] = json.loads(json.dumps(raw, default=list))
        return resolved

    def hash(self) -> str:
        """Changes whenever a stored part would differ (bootstrap resamples do not enter the parts)."""
        raw = self.as_dict()
        raw.pop("bootstrap")
        return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


PRESETS: tuple[str, ...] = ("full", "reduced", "quick")
REDUCED_ORDER: tuple[str, ...] = (
    "mini_resnet",
    "mini_deit",
    "mini_swin",
    "mini_dino_resnet",
    "mini_mocov3_vit",
    "mini_cait",
    "mini_xcit",
    "mini_mocov3_resnet",
    "mini_dino_xcit",
)


def preset(name: str, models: tuple[str, ...] | None = None) -> MetaevalConfig:
    """``"full"``: every mini, every method and metric on 24 images; ``"reduced"``: the same on 8 images, the models
    ordered so that the first few span the families (what fits a shared machine: a run stopped early still
    covers CNN, ViT, Swin and self-supervised); ``"quick"``: one model, few images and methods (tests, a
    wiring check)."""
    from camscope.models.mini import MINI_MODELS

    if name == "full":
        return MetaevalConfig(models=models or MINI_MODELS)
    if name == "reduced":
        return MetaevalConfig(models=models or REDUCED_ORDER, images=8, shard_size=4)
    if name == "quick":
        return MetaevalConfig(
            models=models or ("mini_resnet",),
            images=4,
            shard_size=4,
            methods=("gradcam", "layercam", "randomcam"),
            perturbations=("input",),
            metric_params={"deletion": {"step": 1024}, "insertion": {"step": 1024}, "road": {"percentages": (50,)}},
            bootstrap=100,
        )
    raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


def with_overrides(config: MetaevalConfig, **overrides: Any) -> MetaevalConfig:
    """``config`` with the given non-None settings replaced."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
