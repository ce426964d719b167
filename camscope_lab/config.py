"""Training configs of the mini zoo: what one run trains with, and how two configs compare.

The recipe of each model is declared once, beside its zoo entry (``camscope.models.mini.MINI``); this
module turns it into a :class:`MiniConfig` (the architecture, method and paired views from the same
entry) and is the one reading and comparison of the configs that checkpoints and records store.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from camscope.core.errors import InputError
from camscope.models import mini_archs as backbones
from camscope.models.mini import MINI, MiniEntry
from camscope_lab.data import TWINS
from camscope_lab.dino import CENTERING


@dataclass(frozen=True)
class MiniConfig:
    """How one mini model is trained. ``ssl`` is None (supervised), ``"dino"`` or ``"mocov3"``."""

    name: str
    arch: str
    ssl: str | None = None
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.05
    warmup: int = 100
    minutes: float = 5.0
    # Labelled images of the linear probe (self-supervised minis). Standard linear evaluation fits on the
    # whole labelled training set (CIFAR-10: 50k); fewer leave the probe short of what the features hold.
    probe_images: int = 32768
    grad_clip: float | None = None  # max global gradient norm (the transformers: steadier from scratch)
    teacher_temp: float | None = None  # DINO's teacher temperature (None: DINO's default, 0.04)
    bf16: bool = False  # bfloat16 autocast: ~1.5× faster for the convolutional models on CPUs with AMX
    # Self-supervised options; None keeps the method's own default (see camscope_lab.dino / moco).
    momentum: float | None = None  # base EMA of the teacher / momentum encoder (cosine to 1)
    out_dim: int | None = None  # DINO prototypes
    freeze_last_layer: float = 0.0  # DINO: prototypes frozen for this fraction of the steps
    temperature: float | None = None  # MoCo v3 InfoNCE temperature
    pretrain_size: int = 64  # side of the global views in pre-training (DINO's local views: half)
    global_scale: tuple[float, float] | None = None  # area fraction of the global crops
    # DINO's local crops (half the global side, 10 % up to the global crops' smallest area). DINO's
    # multi-crop: each is a cheap extra view the student must match to the teacher's global ones.
    local_crops: int = 2
    background_pool: int | None = None  # pre-train on scenes whose backgrounds come from a shared pool
    plain_objects: bool = False  # pre-train on scenes whose objects carry no texture
    # The generator-paired method (not label-free in spirit, named wherever its models are shown): each
    # scene's views come from two renderings of its object on different backgrounds at different places;
    # "object" keeps its colours and texture, "shape" redraws them (camscope.data.synthetic.generate_twins).
    paired_views: str | None = None
    # DINOv2's remedies for DINO's partial collapse (camscope_lab.dino): "sinkhorn" centering in place of the
    # EMA center, and the KoLeo spreading term's weight (DINOv2: 0.1).
    centering: str | None = None
    koleo: float = 0.0
    # Token models' training-only architecture settings (camscope.models.mini_archs). ``layer_scale``
    # initialises the layer-scale gains of a model built from scratch (a warm restart keeps its trained
    # ones); None keeps timm's (CaiT: 1e-5). ``drop_path`` is the deepest block's stochastic-depth rate; None
    # keeps timm's (Swin: 0.1, the others: none).
    layer_scale: float | None = None
    drop_path: float | None = None
    # timm's optimiser factory and the DeiT/CaiT recipes: biases, norm and layer-scale gains (every 1-D
    # parameter) and the model's own ``no_weight_decay()`` names (position table, class token) take no weight
    # decay. Off by default, so that the runs that shipped without it replay.
    no_decay_1d: bool = False

    def __post_init__(self) -> None:
        """A mistyped option fails here, in one line, not at the first batch of a long run."""
        choices = (("paired_views", self.paired_views, TWINS), ("centering", self.centering, CENTERING))
        for field, value, allowed in choices:
            if value is not None and value not in allowed:
                raise InputError(f"{self.name}: {field} must be one of {', '.join(allowed)} or none, not {value!r}")

    @property
    def family(self) -> str:
        return backbones.ARCHS[self.arch].family


#: MiniConfig fields that only change the evaluation after training, never the training trajectory.
EVALUATION_ONLY = frozenset({"probe_images"})


def entry_config(entry: MiniEntry) -> MiniConfig:
    """The training config of a zoo entry: its architecture, method, paired views and recipe."""
    declared = {"name", "arch", "ssl", "paired_views"}  # the entry's own fields, not the recipe's
    unknown = sorted(set(entry.recipe) - ({f.name for f in fields(MiniConfig)} - declared))
    if unknown:
        raise InputError(f"{entry.name}: its recipe has fields a training config does not take ({', '.join(unknown)})")
    return MiniConfig(entry.name, entry.arch, entry.ssl, paired_views=entry.paired_views, **entry.recipe)


CONFIGS: dict[str, MiniConfig] = {e.name: entry_config(e) for e in MINI}


def saved_config(state: dict[str, Any], path: Path | str = "the checkpoint") -> MiniConfig:
    """The config a train-mini checkpoint was written with; fields added since then take their defaults.

    The one reading of a checkpoint's config: resuming compares it with the current one, and tools that
    only look at a checkpoint's weights (``camscope_lab/experiments/mini_probe_factors.py``) rebuild the
    model from it.
    """
    return config_from(json.loads(state["config"]), path)


def config_from(saved: dict[str, Any], path: Path | str = "the record") -> MiniConfig:
    """A stored config (a checkpoint's or a record's ``config``, as JSON gives it back) as a :class:`MiniConfig`."""
    unknown = sorted(set(saved) - {f.name for f in fields(MiniConfig)})
    if unknown:
        raise InputError(f"{path} has config fields this version does not know ({', '.join(unknown)})")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
    return MiniConfig(**values)


def config_differences(
    saved: MiniConfig, current: MiniConfig, ignore: Collection[str] = ()
) -> dict[str, tuple[Any, Any]]:
    """The fields, other than ``ignore``, in which two configs differ: ``{field: (saved, current)}``.

    The one comparison behind ``--resume`` (which refuses another recipe) and the test that a shipped
    record's command replays the recipe its zoo entry declares.
    """
    return {
        f.name: (getattr(saved, f.name), getattr(current, f.name))
        for f in fields(MiniConfig)
        if f.name not in ignore and getattr(saved, f.name) != getattr(current, f.name)
    }
