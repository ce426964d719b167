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

# Bumped whenever the rows a part holds change (columns added), so a folder of older parts is not resumed
# into a mix: 2 added the constant-fill drops (``fill_drop_*``).
PART_FORMAT = 2

# Methods left out of "every method": RELAX draws thousands of masked forwards per image (≈ 6 s per
# image on a mini, 100× Grad-CAM) and explains an embedding, not the class.
EXCLUDED_METHODS: tuple[str, ...] = ("relax",)
PERTURBATIONS: tuple[str, ...] = ("input", "model")

# Coarser than the metrics' defaults, so that every metric on every mini fits the budget (measured on mini_cait,
# 64 px: a forward costs ~3 ms of CPU per image, and each metric runs on every map, image and condition):
# deletion/insertion in 8 steps of 512 pixels (the demo's setting); ROAD at three removal fractions (its noisy
# linear imputation costs more than the forward of a mini); Chefer's perturbation test at three fractions
# instead of nine; the correlation metrics on 10 random subsets (faithfulness correlation, Quantus: 100) or
# one random baseline per step (monotonicity, Quantus: 100); pixel flipping and monotonicity in steps of 1024
# of the image's 3·64·64 values (12 forwards) instead of one value (12 288); region perturbation and
# selectivity on 16 px patches (16 of them on 64 px; their defaults are 8 px patches, 64 forwards), region
# perturbation evaluating the first 8 of them; infidelity on 16 px patches (16 forwards; its 4 px default
# takes 256). The random ones get a seed: a rerun gives the same numbers, and noise resilience compares the
# conditions under the same draws.
FAST_METRIC_PARAMS: dict[str, dict[str, Any]] = {
    "deletion": {"step": 512},
    "insertion": {"step": 512},
    "road": {"percentages": (20, 50, 80)},
    "positive_perturbation": {"steps": (0.25, 0.5, 0.75)},
    "negative_perturbation": {"steps": (0.25, 0.5, 0.75)},
    "faithfulness_correlation": {"nr_runs": 10, "seed": 0},
    "monotonicity_correlation": {"nr_samples": 1, "features_in_step": 1024, "seed": 0},
    "pixel_flipping": {"features_in_step": 1024},
    "region_perturbation": {"patch_size": 16, "regions_evaluation": 8},
    "selectivity": {"patch_size": 16},
    "infidelity": {"perturb_patch_sizes": (16,)},
}

_SCORES_A_METHOD = (
    "re-explains the model (explain_func), so it scores the method that made a map, not the map: named with "
    "--metrics, each map is re-explained with its own method, and the true mask and its inverse, which have "
    "none, are skipped (no oracle > random > inverse)"
)
# Metrics left out of "every metric", each with the reason the results print; ``--metrics NAME`` still runs one.
# The reasons are documentation: the summary prints the current text, and they do not enter the settings hash.
EXCLUDED_METRICS: dict[str, str] = {
    "irof": (
        "removes each of ~96 SLIC superpixels of a 64 px scene in turn: ~96 forwards and ~270 ms of CPU per image "
        "and map on mini_cait, about two thirds of what the 13 other perturbation metrics cost together at "
        "these settings, and its segment count is not a parameter"
    ),
    "focus": (
        "needs mosaics of four images, two of the target class (camscope.data.mosaic); on one scene with its "
        "object mask it is the positive relevance mass, not Focus"
    ),
    **{
        name: f"{_SCORES_A_METHOD}; each score re-explains every method {cost}, per image and condition"
        for name, cost in (
            ("max_sensitivity", "nr_samples times (Quantus: 200)"),
            ("avg_sensitivity", "nr_samples times (Quantus: 200)"),
            ("local_lipschitz_estimate", "nr_samples times (Quantus: 200)"),
            ("mprt", "once per layer"),
            ("smooth_mprt", "nr_samples times per layer (Quantus: 50)"),
        )
    },
    **{
        name: f"{_SCORES_A_METHOD}; not in this budget's run (≈{ms} ms of CPU per image and map on mini_resnet)"
        for name, ms in (("random_logit", 15), ("efficient_mprt", 30))
    },
}


@dataclass(frozen=True)
class MetaevalConfig:
    """One meta-evaluation. ``methods``/``metrics`` None: every registered one (methods less
    :data:`EXCLUDED_METHODS`; attention methods only on models that have attention)."""

    models: tuple[str, ...]
    # 8 scenes: 4 took ~14-15 CPU-min for the 9 minis (one torch thread, 14.6 min of wall time on the 2-core
    # machine); 8 on its two cores side by side (--jobs 2) fit the 30-minute budget with room for a neighbour
    images: int = 8
    seed: int = 11  # the generator seed: fresh scenes, disjoint from the minis' training seeds
    shard_size: int = 2
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
        return tuple(m for m in metric_names() if m not in EXCLUDED_METRICS)

    def excluded_metrics(self) -> dict[str, str]:
        """The registered metrics "every metric" leaves out, with why (none when ``metrics`` names them)."""
        from camscope.metrics import metric_names

        if self.metrics is not None:
            return {}
        return {m: EXCLUDED_METRICS[m] for m in metric_names() if m in EXCLUDED_METRICS}

    def as_dict(self) -> dict[str, Any]:
        """The settings with methods and metrics resolved: what the results were computed with."""
        raw = asdict(self)
        raw["methods"], raw["metrics"] = list(self.resolved_methods()), list(self.resolved_metrics())
        raw["excluded_metrics"] = self.excluded_metrics()
        raw["metric_params"] = {k: v for k, v in self.metric_params.items() if k in raw["metrics"]}
        resolved: dict[str, Any] = json.loads(json.dumps(raw, default=list))
        return resolved

    def hash(self) -> str:
        """Changes whenever a stored part would differ (bootstrap resamples and the reasons for leaving a metric
        out do not enter the parts)."""
        raw = {**comparable(self.as_dict()), "part_format": PART_FORMAT}
        return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


def comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """Stored settings less what does not change a part: bootstrap resamples, the reasons for leaving a metric
    out (its name stays)."""
    raw = {k: v for k, v in settings.items() if k != "bootstrap"}
    raw["excluded_metrics"] = sorted(raw.get("excluded_metrics") or [])
    return raw


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
    """``"full"``: every mini, every method and metric on 8 images; ``"reduced"``: the same on 2 images, the models
    ordered so that the first few span the families (what fits a shared machine: a run stopped early still
    covers CNN, ViT, Swin and self-supervised); ``"quick"``: one model, few images and methods (tests, a
    wiring check)."""
    from camscope.models.mini import MINI_MODELS

    if name == "full":
        return MetaevalConfig(models=models or MINI_MODELS)
    if name == "reduced":
        return MetaevalConfig(models=models or REDUCED_ORDER, images=2, shard_size=2)
    if name == "quick":
        return MetaevalConfig(
            models=models or ("mini_resnet",),
            images=4,
            shard_size=4,
            methods=("gradcam", "layercam", "randomcam"),
            perturbations=("input",),
            metric_params={
                **FAST_METRIC_PARAMS,
                "deletion": {"step": 1024},
                "insertion": {"step": 1024},
                "road": {"percentages": (50,)},
            },
            bootstrap=100,
        )
    raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


def with_overrides(config: MetaevalConfig, **overrides: Any) -> MetaevalConfig:
    """``config`` with the given non-None settings replaced."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
