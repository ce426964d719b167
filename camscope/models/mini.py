"""The nine mini models as ordinary zoo entries, with weights shipped inside the package.

This module is the one definition of the mini zoo: which models exist (:data:`MINI`), which
architecture and training regime each has, where their weights live (``PACKAGED_DIR``) and the record
written beside each file. Each entry is a :class:`~camscope.models.spec.ModelSpec` like the seed's:
the same family, the same default target layer (so the zoo's per-family layer and reshape rules are
exercised by trained models), a packaged ``safetensors`` file, the generator's normalisation as
preprocessing, the shape names as classes, and supervised / self-supervised (DINO, MoCo v3) /
generator-paired (a self-supervised method on views the generator paired: :data:`GENERATOR_PAIRED`).

How they are trained lives in :mod:`camscope.lab` (``camscope train-mini``), which importing the
library never loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


def training_kind(ssl: str | None, paired_views: str | None = None) -> str:
    """ "supervised", "self-supervised", or :data:`GENERATOR_PAIRED` (the one definition of a mini's group)."""
    if ssl is None:
        return "supervised"
    return GENERATOR_PAIRED if paired_views else "self-supervised"


@dataclass(frozen=True)
class MiniEntry:
    """One mini model: its name, its architecture key in :data:`ARCHS`, its self-supervised method and, for
    the generator-paired method, what a scene's twin keeps (``"object"`` or ``"shape"``).

    ``paired_views`` belongs to the shipped weights: the training config reads it from here, and a test
    checks it against each shipped record, so the group a model is shown in is declared, not inferred.
    """

    name: str
    arch: str
    ssl: str | None = None  # None (supervised), "dino" or "mocov3"
    paired_views: str | None = None

    @property
    def training(self) -> str:
        """Its group: supervised, self-supervised or generator-paired."""
        return training_kind(self.ssl, self.paired_views)


MINI: tuple[MiniEntry, ...] = (
    MiniEntry("mini_resnet", "resnet"),
    MiniEntry("mini_deit", "vit"),
    MiniEntry("mini_cait", "cait"),
    MiniEntry("mini_swin", "swin"),
    MiniEntry("mini_xcit", "xcit"),
    MiniEntry("mini_dino_resnet", "resnet", "dino"),
    MiniEntry("mini_dino_xcit", "xcit", "dino", paired_views="shape"),
    MiniEntry("mini_mocov3_resnet", "resnet", "mocov3"),
    MiniEntry("mini_mocov3_vit", "vit", "mocov3", paired_views="shape"),
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


# Issue 11's accuracy targets, by training kind: test accuracy of a supervised mini, linear-probe accuracy of
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
