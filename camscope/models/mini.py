"""The nine mini models as ordinary zoo entries, with weights shipped inside the package.

This module is the one definition of the mini zoo: which models exist (:data:`MINI`), which
architecture and training regime each has, where their weights live (``PACKAGED_DIR``) and the record
written beside each file. Each entry is a :class:`~camscope.models.spec.ModelSpec` like the seed's:
the same family, the same default target layer (so the zoo's per-family layer and reshape rules are
exercised by trained models), a packaged ``safetensors`` file, the generator's normalisation as
preprocessing, the shape names as classes, and supervised / self-supervised (DINO, MoCo v3) /
generator-paired (a self-supervised method on views the generator paired: :data:`GENERATOR_PAIRED`).

Each entry also declares its training recipe (:attr:`MiniEntry.recipe`): plain hyperparameters, the
one list of them. The training lab, :mod:`camscope_lab` (``camscope train-mini``), reads them; the library
never imports the lab. How each recipe came to be is told in ``benchmarks/results/mini_recipes.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from camscope.data.synthetic import CLASS_NAMES, DEFAULT_SIZE, SYNTHETIC_MEAN, SYNTHETIC_STD
from camscope.models.mini_archs import ARCHS
from camscope.models.preprocess import Preprocess
from camscope.models.spec import ModelSpec, register_model, registered_spec
from camscope.models.weights import PACKAGED_DIR, WeightsFile

PREPROCESS = Preprocess(resize=DEFAULT_SIZE, crop=(DEFAULT_SIZE, DEFAULT_SIZE), mean=SYNTHETIC_MEAN, std=SYNTHETIC_STD)
SSL_NAMES: dict[str, str] = {"dino": "DINO", "mocov3": "MoCo v3"}
# A self-supervised model whose pre-training views were cut from two renderings of the same object on
# different backgrounds (camscope.data.synthetic.generate_twins): its own group wherever models are
# compared, because what its views share was chosen by the generator, not by the method.
GENERATOR_PAIRED = "generator-paired"
TEST_SEED = 7  # the fixed held-out test set of every record: generate(n, TEST_SEED)


def training_kind(ssl: str | None, paired_views: str | None = None) -> str:
    """ "supervised", "self-supervised", or :data:`GENERATOR_PAIRED` (the one definition of a mini's group)."""
    if ssl is None:
        return "supervised"
    return GENERATOR_PAIRED if paired_views else "self-supervised"


@dataclass(frozen=True)
class MiniEntry:
    """One mini model: its name, its architecture key in :data:`ARCHS`, its self-supervised method, for the
    generator-paired method what a scene's twin keeps (``"object"`` or ``"shape"``), and its training recipe.

    ``paired_views`` belongs to the shipped weights: the training config reads it from here, and a test
    checks it against each shipped record, so the group a model is shown in is declared, not inferred.
    ``recipe`` holds the hyperparameters the lab's training config takes beyond these (field names of
    ``camscope_lab.config.MiniConfig``; the rest keep its defaults); a test checks that each shipped record
    was trained with its entry's recipe, so the shipped command replays it.
    """

    name: str
    arch: str
    ssl: str | None = None  # None (supervised), "dino" or "mocov3"
    paired_views: str | None = None
    recipe: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipe", MappingProxyType(dict(self.recipe)))  # shared data: read-only

    @property
    def training(self) -> str:
        """Its group: supervised, self-supervised or generator-paired."""
        return training_kind(self.ssl, self.paired_views)


# DINO's small-data settings (lightly; facebookresearch/dino issue 43): teacher temperature 0.04, 1024
# prototypes, EMA 0.996, prototypes frozen for the first 5 % of steps; 32-px views with global crops of 25-100 %
# of the scene (4x the images per minute of 64-px views; the CAM grid at the 64-px evaluation size stays 8x8).
# Shared by both DINO minis, so a change reaches both.
_DINO_SMALL_DATA: dict[str, Any] = dict(
    batch_size=256,
    teacher_temp=0.04,
    out_dim=1024,
    momentum=0.996,
    freeze_last_layer=0.05,
    pretrain_size=32,
    global_scale=(0.25, 1.0),
)

MINI: tuple[MiniEntry, ...] = (
    MiniEntry("mini_resnet", "resnet", recipe=dict(lr=2e-3, batch_size=32, warmup=30, minutes=12.0, bf16=True)),
    # From scratch in one schedule: lr 1e-3 sat at chance for thousands of steps; a long warm-up at 5e-4 did not.
    MiniEntry("mini_deit", "vit", recipe=dict(lr=5e-4, batch_size=32, warmup=500, grad_clip=1.0, minutes=85.0)),
    # CaiT's own settings for a shallow model: layer-scale gains from 0.1 (timm's 1e-5 is meant for 24+ blocks)
    # and no weight decay on 1-D parameters, position table and class token. A warm restart's recipe (low peak,
    # short warm-up): the record's command continues from a checkpoint trained at a higher peak.
    MiniEntry(
        "mini_cait",
        "cait",
        recipe=dict(lr=3e-4, batch_size=32, warmup=200, grad_clip=1.0, layer_scale=0.1, no_decay_1d=True, minutes=85.0),
    ),
    # No drop-path: timm's default 0.1 made no difference on a stream of scenes never seen twice. A warm restart's
    # recipe, as CaiT's.
    MiniEntry(
        "mini_swin",
        "swin",
        recipe=dict(lr=1e-3, batch_size=32, warmup=200, grad_clip=1.0, drop_path=0.0, minutes=30.0, bf16=True),
    ),
    MiniEntry("mini_xcit", "xcit", recipe=dict(batch_size=32, minutes=20.0)),
    # DINOv2's Sinkhorn-Knopp centering and KoLeo term against partial collapse (features in few directions).
    MiniEntry(
        "mini_dino_resnet",
        "resnet",
        "dino",
        recipe=dict(_DINO_SMALL_DATA, lr=1e-3, warmup=50, centering="sinkhorn", koleo=0.1, minutes=10.0, bf16=True),
    ),
    # XCiT takes smaller views unchanged (convolutional patch embedding, no fixed position table).
    MiniEntry(
        "mini_dino_xcit",
        "xcit",
        "dino",
        paired_views="shape",
        recipe=dict(
            _DINO_SMALL_DATA,
            teacher_temp=0.02,
            lr=1e-3,
            warmup=200,
            grad_clip=3.0,
            pretrain_size=48,
            centering="sinkhorn",
            koleo=0.1,
            minutes=15.0,
        ),
    ),
    # One shared background (background_pool=1): with several, the background tells a batch's images apart,
    # and every self-supervised mini encoded it (camscope_lab/experiments/mini_probe_factors.py).
    MiniEntry(
        "mini_mocov3_resnet",
        "resnet",
        "mocov3",
        recipe=dict(
            lr=2e-3,
            batch_size=256,
            warmup=50,
            pretrain_size=32,
            global_scale=(0.25, 1.0),
            background_pool=1,
            minutes=10.0,
            bf16=True,
        ),
    ),
    # 48-px views, the position table resampled to the 6x6 grid: at 32 px an object spans only 1-2 tokens.
    MiniEntry(
        "mini_mocov3_vit",
        "vit",
        "mocov3",
        paired_views="shape",
        recipe=dict(
            lr=5e-4,
            batch_size=256,
            warmup=200,
            weight_decay=0.1,
            grad_clip=1.0,
            pretrain_size=48,
            global_scale=(0.25, 1.0),
            minutes=15.0,
        ),
    ),
)
MINI_MODELS: tuple[str, ...] = tuple(e.name for e in MINI)


def mini_entry(name: str) -> MiniEntry:
    """The :class:`MiniEntry` called ``name`` (``KeyError`` if there is none)."""
    for entry in MINI:
        if entry.name == name:
            return entry
    raise KeyError(name)


def mini_record(name: str) -> dict[str, Any]:
    """The JSON record written beside the packaged weights when the model was trained."""
    record: dict[str, Any] = json.loads((PACKAGED_DIR / f"{name}.json").read_text())
    return record


# The accuracy targets, by training kind: test accuracy of a supervised mini, linear-probe accuracy of
# a self-supervised one. Below its target a model explains a weaker classifier; every place that shows the
# minis' maps says so (the README tables, the report's Models section).
ACCURACY_TARGETS: dict[str, float] = {"supervised": 95.0, "self-supervised": 80.0, GENERATOR_PAIRED: 80.0}


def trained_accuracy(name: str) -> tuple[float, float] | None:
    """``(test accuracy in its record, its target)`` for a mini model's shipped weights; None for other names."""
    if name not in MINI_MODELS:
        return None
    record = mini_record(name)
    return float(record["test_accuracy"]), ACCURACY_TARGETS[record["training"]]


def mini_specs() -> list[ModelSpec]:
    """One spec per mini model, in the order of :data:`MINI`."""
    specs = []
    for entry in MINI:
        arch = ARCHS[entry.arch]
        specs.append(
            ModelSpec(
                name=entry.name,
                family=arch.family,
                build=arch.build,
                preprocess=PREPROCESS,
                weights=(WeightsFile(f"{entry.name}.safetensors", packaged=True),),
                target_layers=arch.target_layers,
                training=entry.training,
                ssl_method=SSL_NAMES.get(entry.ssl or ""),
                num_classes=len(CLASS_NAMES),
                class_names=CLASS_NAMES,
                source="camscope mini zoo (camscope train-mini), trained on camscope.data.synthetic",
                notes=arch.description
                + ("" if entry.ssl is None else "; linear classifier on the frozen self-supervised backbone"),
            )
        )
    return specs


def register_mini_models() -> tuple[str, ...]:
    """Register the mini zoo (idempotent: names already registered are left as they are)."""
    for spec in mini_specs():
        if registered_spec(spec.name) is None:
            register_model(spec)
    return MINI_MODELS
