"""Training the mini zoo: one optimisation loop, one linear probe, records beside the weights.

Why a time budget (``minutes``) next to a step count: the machines this runs on are shared, so a
fixed step count can take 3 minutes or 30. A run given ``minutes`` times its first steps, fixes the
total step count from that (the cosine schedule needs it) and records it; ``steps`` replays a run
exactly. Training is on CPU with one thread by default, seeded, on freshly generated images per chunk:
on the 2-core machine two threads make one run only ~1.7× faster, so two one-thread runs side by side
finish more (and on contended cores one thread was ~8× faster than two).

Supervised minis train end to end with cross-entropy. Self-supervised minis are pre-trained without
labels by their own method (:mod:`camscope.lab.dino`, :mod:`camscope.lab.moco`), then the backbone
is frozen and a linear classifier is fitted on its pooled features and written into the model's
own head — the same recipe as the seed's DINO and MoCo v3 linear-evaluation checkpoints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import time
import warnings
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from camscope.core.errors import InputError
from camscope.lab.data import PROBE_SEED_BASE, TEST_SEED, TWINS, accuracy, batches, to_input
from camscope.lab.dino import CENTERING
from camscope.models import mini_archs as backbones
from camscope.models.mini import MINI, SSL_NAMES, mini_entry, training_kind
from camscope.models.weights import PACKAGED_DIR

if TYPE_CHECKING:
    from camscope.lab.dino import Dino
    from camscope.lab.moco import MocoV3

WEIGHTS_DIR = PACKAGED_DIR  # training writes where the zoo reads packaged weights
TEST_N = 1000  # images in the recorded test set (TEST_SEED)
CHECK_N = 500  # the first CHECK_N of them: what the test suite re-measures from the shipped file (fast CI)
CALIBRATION_STEPS = 20
RUNS_DIR = Path("mini_runs")  # default home of checkpoints and in-progress records (git-ignored)
CHECKPOINT_NAME = "checkpoint.pt"
# Beside a self-supervised model file: what its method trained besides the backbone (heads, predictor, centre).
METHOD_SUFFIX = ".method.safetensors"
CHECKPOINT_SECONDS = 240.0  # the issue asks for one at least every 5 minutes
CHECKPOINT_VERSION = 1


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
    # Labelled images of the linear probe (self-supervised minis). Standard linear evaluation fits on
    # the whole labelled training set (CIFAR-10: 50k); 8192 left the probe 3.7 points short on the
    # MoCo-v3 ResNet (54.6 % → 58.2 % at 32768, 58.3 % at 65536: benchmarks/results/mini_recipes.md).
    probe_images: int = 32768
    grad_clip: float | None = None  # max global gradient norm (the transformers: steadier from scratch)
    teacher_temp: float | None = None  # DINO's teacher temperature (None: DINO's default, 0.04)
    bf16: bool = False  # bfloat16 autocast: ~1.5× faster for the convolutional models on CPUs with AMX
    # Self-supervised options; None keeps the method's own default (see camscope.lab.dino / moco).
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
    # DINOv2's remedies for DINO's partial collapse (camscope.lab.dino): "sinkhorn" centering in place of the
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


# DINO at lr 1e-3 collapsed to the uniform output as its warm-up ended (loss flat at ln 512 = 6.24 from
# step ~200, linear probe 11.9 %); DINO's own rule, 5e-4 × batch / 256, gives 1.25e-4 at batch 64.
# At 2.5e-4 it still drifted to ln 512, with the default teacher temperature (XCiT) and with the
# sharper 0.02 the DINO authors suggest against this collapse (ResNet): see the records' figures.
# Second pass (issue 11, benchmarks/results/mini_recipes.md): the ResNet SSL minis pre-train on 32-px
# views (4× the images per minute; the CAM grid at the 64-px evaluation size stays 8×8) with global crops
# of 25-100 % of the scene, on a 10,000-step schedule that spans sessions (``--resume``). DINO takes the
# small-data settings of lightly / DINO issue 43: teacher temperature 0.04, 1024 prototypes, EMA 0.996,
# prototypes frozen for the first 5 % of steps, lr 5e-4. MoCo v3 pre-trains on scenes whose backgrounds
# come from a pool of 16 (``background_pool``), so the background no longer identifies the image.
# Third pass (session 7): DINO-XCiT pre-trains on pooled backgrounds too, and the MoCo v3 ViT on 32-px views
# (its position table resampled, ``mini_archs.resample_positions``: a step 5.5x faster than at 64 px).
# Fourth pass (session 8): the MoCo v3 ViT on 48-px views, which beat 32 px at equal wall-clock time.
# Fifth pass (session 10): the MoCo v3 ViT on one shared background (``background_pool=1``); session 11: the
# MoCo v3 ResNet too. Sixth pass (session 12): both token SSL minis on the generator-paired method
# (``paired_views``): not label-free in spirit, so they are their own group ("generator-paired") wherever
# models are compared.
#: MiniConfig fields that only change the evaluation after training, never the training trajectory.
EVALUATION_ONLY = frozenset({"probe_images"})

# DINO's small-data settings (lightly / DINO issue 43), shared by the ResNet and the XCiT mini: one
# definition, so a change to the recipe reaches both.
_DINO_SMALL_DATA: dict[str, Any] = dict(
    batch_size=256,
    teacher_temp=0.04,
    out_dim=1024,
    momentum=0.996,
    freeze_last_layer=0.05,
    pretrain_size=32,
    global_scale=(0.25, 1.0),
)

_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "mini_resnet": dict(lr=2e-3, batch_size=32, warmup=30, minutes=12.0, bf16=True),
    # DeiT and CaiT: lr 5e-4 at batch 64 until session 16, when XCiT's lr 1e-3 at batch 32 beat it from the same
    # warm start (DeiT: 83.5 % in 10.3 minutes against 82.9 % in 15.5; a step costs 0.15 s against 0.37 s).
    # From scratch lr 1e-3 sat at chance (loss ln 10 for 4,000+ steps, session 17); lr 5e-4 with 500 warm-up
    # steps at batch 32 trained both from scratch in one schedule: DeiT 95.1 % in 84 minutes, CaiT 88.8 % in 81
    # (benchmarks/results/mini_recipes.md, session 17). CaiT then took its own paper's settings for a shallow
    # model: layer-scale gains starting at 0.1 (not timm's 1e-5, the value for 24+ blocks) and no weight decay
    # on 1-D parameters, position table and class token (timm's optimiser rule): 90.2 % in 80 minutes, its
    # loss per step as low as DeiT's until ~10,000 steps (session 18). Session 19: a higher peak, lr 8e-4 with
    # 1,500 warm-up steps, 94.2 % in 78 minutes from scratch (lr 1e-3, 2,000 warm-up: 94.5 %); a warm restart from
    # it at lr 3e-4 with 200 warm-up steps, 7,500 steps, 95.9 % (103 minutes in all). The recipe below is that
    # warm restart's, as Swin's: the record's command continues from the lr-8e-4 run's checkpoint.
    "mini_deit": dict(lr=5e-4, batch_size=32, warmup=500, grad_clip=1.0, minutes=85.0),
    "mini_cait": dict(
        lr=3e-4, batch_size=32, warmup=200, grad_clip=1.0, layer_scale=0.1, no_decay_1d=True, minutes=85.0
    ),
    # Swin: the same change (session 16: 91.7 -> 95.4 % in 10 minutes), without timm's default drop-path 0.1,
    # which made no difference on this stream of fresh scenes (91.5 against 91.7 % from the same start).
    "mini_swin": dict(lr=1e-3, batch_size=32, warmup=200, grad_clip=1.0, drop_path=0.0, minutes=30.0, bf16=True),
    "mini_xcit": dict(batch_size=32, minutes=20.0),
    # DINO ResNet: DINOv2's Sinkhorn-Knopp centering and KoLeo term, as DINO-XCiT's, from session 18: a warm
    # restart from the finished 15,000-step schedule (77.8 %) gave 78.4 %, the feature rank 12.9 -> 15.5.
    "mini_dino_resnet": dict(
        _DINO_SMALL_DATA, lr=1e-3, warmup=50, centering="sinkhorn", koleo=0.1, minutes=10.0, bf16=True
    ),
    # XCiT takes smaller views unchanged (convolutional patch embedding, no fixed position table). Sixth
    # pass (session 12): the generator-paired method, 48-px views: 30.0 % (label-free, pool 16) -> 34.7 % on
    # "shape" twins, its loss drifting towards the uniform output and its features spanning an effective
    # rank of 3.4 (partial collapse). Seventh pass (session 13): DINOv2's Sinkhorn-Knopp centering and KoLeo
    # term (weight 0.1) at teacher 0.04: rank 3.4 -> 21, 38.7 % after 1,133 steps. Eighth pass (session 14):
    # continued from that run's checkpoint (its DINO head and teacher, not the shipped backbone alone) at
    # lr 1e-3: 52.5 % after 913 steps, 52.9 % after its full 1,200; at 5e-4 44.1 % after 337, at teacher
    # 0.01 48.7 % after 759. Its head stays near the uniform output (benchmarks/mini_dino_head.py);
    # mini_recipes.md. Ninth pass (session 15): from the shipped backbone with fresh heads (the old head had
    # collapsed) at lr 1e-3: 80.7 % after 1,700 steps at teacher 0.02, 78.4 % at 0.04.
    "mini_dino_xcit": dict(
        _DINO_SMALL_DATA,
        teacher_temp=0.02,
        lr=1e-3,
        warmup=200,
        grad_clip=3.0,
        pretrain_size=48,
        centering="sinkhorn",
        koleo=0.1,
        minutes=15.0,  # paired_views: declared in the zoo's list (camscope.models.mini.MINI)
    ),
    "mini_mocov3_resnet": dict(
        lr=2e-3,
        batch_size=256,
        warmup=50,
        pretrain_size=32,
        global_scale=(0.25, 1.0),
        # One shared background (session 11), as for the ViT: from the shipped 67.9 % model, 4,000 steps on
        # pool 1 probed 73.8 %; session 16: 15,000 more from that file (fresh heads) probed 87.5 %
        # (benchmarks/results/mini_recipes.md).
        background_pool=1,
        minutes=10.0,
        bf16=True,
    ),
    "mini_mocov3_vit": dict(
        lr=5e-4,
        batch_size=256,
        warmup=200,
        weight_decay=0.1,
        grad_clip=1.0,
        # 48-px views, its position table resampled to the 6×6 grid (resample_positions). At 32 px (4×4
        # tokens, each seeing 15 px through the conv stem) a token holds texture but an object spans only
        # 1-2 tokens; at 48 px a step costs 2.1× as much and the probe gained more in less time (session 8).
        pretrain_size=48,
        global_scale=(0.25, 1.0),
        # One shared background (session 10): with a pool of 16 the background told 16 groups of a batch
        # apart, and every SSL mini encoded it (benchmarks/mini_probe_factors.py); from the same warm start,
        # pool 1 probed 30.6 % after 1,600 steps where pool 16 gave 27.9 % after 1,800. No label-free data
        # setting moved it further. Sixth pass (session 12): the generator-paired method, 30.6 -> 37.2 % after
        # 693 steps on "object" twins -> 53.3 % after 1,347 more on "shape" twins -> 67.8 % after 2,217 more
        # (session 13; mini_recipes.md). Its paired_views is declared in the zoo's list (models.mini.MINI).
        minutes=15.0,
    ),
}


def _config(name: str) -> MiniConfig:
    """The training config of ``name``: architecture, method and paired views from the zoo's list, the rest
    from here."""
    entry = mini_entry(name)
    return MiniConfig(name, entry.arch, entry.ssl, paired_views=entry.paired_views, **_HYPERPARAMETERS[name])


# Every mini model of the zoo has a training config, and nothing else does.
assert set(_HYPERPARAMETERS) == {e.name for e in MINI}, "mini zoo and training configs disagree"
CONFIGS: dict[str, MiniConfig] = {e.name: _config(e.name) for e in MINI}


def saved_config(state: dict[str, Any], path: Path | str = "the checkpoint") -> MiniConfig:
    """The config a train-mini checkpoint was written with; fields added since then take their defaults.

    The one reading of a checkpoint's config: resuming compares it with the current one, and tools that
    only look at a checkpoint's weights (``benchmarks/mini_probe_factors.py``) rebuild the model from it.
    """
    return config_from(json.loads(state["config"]), path)


def config_from(saved: dict[str, Any], path: Path | str = "the record") -> MiniConfig:
    """A stored config (a checkpoint's or a record's ``config``, as JSON gives it back) as a :class:`MiniConfig`."""
    unknown = sorted(set(saved) - {f.name for f in fields(MiniConfig)})
    if unknown:
        raise InputError(f"{path} has config fields this version does not know ({', '.join(unknown)})")
    return MiniConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})


def config_differences(
    saved: MiniConfig, current: MiniConfig, ignore: Collection[str] = ()
) -> dict[str, tuple[Any, Any]]:
    """The fields, other than ``ignore``, in which two configs differ: ``{field: (saved, current)}``.

    The one comparison behind ``--resume`` (which refuses another recipe) and the test that a shipped
    record's command replays the recipe in the code.
    """
    return {
        f.name: (getattr(saved, f.name), getattr(current, f.name))
        for f in fields(MiniConfig)
        if f.name not in ignore and getattr(saved, f.name) != getattr(current, f.name)
    }


def images_seen(record: dict[str, Any], path: Path | str = "the record") -> int:
    """How many training images the model of a train-mini record has seen, from any version's record.

    Records before the ``images`` field held a single run's steps at one batch size (the oldest kept the
    batch size only in their ``config``); a warm restart of a warm restart without the field cannot be
    counted, and a guess would let the next run re-read images, so it is refused.
    """
    if "images" in record:
        return int(record["images"])
    batch_size = record.get("batch_size", record.get("config", {}).get("batch_size"))
    if record.get("prior_steps") or batch_size is None:
        raise InputError(f"{path} does not say how many images its model has seen")
    return int(record["steps"]) * int(batch_size)


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return base * (step + 1) / warmup
    return 0.5 * base * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


@dataclass(frozen=True)
class Session:
    """How long this invocation trains, and where the run's checkpoint lives.

    ``steps`` fixes the schedule of a new run (None: as many steps as fit in ``minutes``, or in the
    config's minutes, timed on the first steps). ``minutes`` is also this session's wall-clock budget:
    when it is spent (with 25 % slack if it also sized the schedule) the run stops cleanly, writes its
    checkpoint, and ``resume`` continues it later. ``stop_at`` stops once that many steps of the
    schedule are done (staged runs, tests). A checkpoint is written every ``checkpoint_seconds``.
    ``continue_from`` starts a new schedule (a warm restart: fresh optimiser, warm-up and cosine again)
    from the weights of another run's checkpoint of the same config, on the images after that run's.
    ``fresh_heads`` (with a model file) leaves the method-state file beside it unread: a head that has
    collapsed to the uniform output is better re-learned (session 15, ``benchmarks/results/mini_recipes.md``).
    """

    run_dir: Path | None = None
    resume: bool = False
    steps: int | None = None
    minutes: float | None = None
    stop_at: int | None = None
    checkpoint_seconds: float = CHECKPOINT_SECONDS
    continue_from: Path | None = None
    fresh_heads: bool = False


@dataclass(frozen=True)
class Lineage:
    """The earlier runs a run continues (``Session.continue_from``); the field names are the checkpoint's
    and the record's keys."""

    prior_steps: int = 0
    prior_images: int = 0
    prior_seconds: float = 0.0
    continued_from: str = ""  # the checkpoint or model file it started from
    continued_from_sha256: str = ""  # that file's content: a shipped model file is overwritten later
    continued_method_sha256: str = ""  # the method-state file read beside a model file ("": none, fresh heads)
    fresh_heads: bool = False  # the method's heads were started afresh on request (``Session.fresh_heads``)

    @classmethod
    def read(cls, state: dict[str, Any]) -> Lineage:
        """From a checkpoint; keys it lacks (written before they existed) keep their defaults."""
        return cls(**{f.name: state.get(f.name, f.default) for f in fields(cls)})


@dataclass(frozen=True)
class Progress:
    """Where a run stands after a session."""

    step: int
    total: int
    seconds: float  # training seconds over all sessions
    sessions: int
    stopped: str  # "finished", "budget", "stop_at" or "signal"
    lineage: Lineage = Lineage()

    @property
    def complete(self) -> bool:
        return self.step >= self.total


@contextlib.contextmanager
def _stop_requests() -> Iterator[Callable[[], bool]]:
    """SIGTERM / SIGINT ask the loop to stop after the current step (and checkpoint) instead of dying."""
    caught: list[int] = []
    previous: dict[int, Any] = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    except ValueError:  # not the main thread: no handlers, the run just cannot be stopped politely
        pass
    try:
        yield lambda: bool(caught)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _decay_groups(cfg: MiniConfig, module: nn.Module | None, params: list[nn.Parameter]) -> list[dict[str, Any]]:
    """AdamW's parameter groups: one, or (``no_decay_1d``) the decayed ones and those exempt from decay."""
    if not cfg.no_decay_1d:
        return [{"params": params}]
    exempt = {id(p) for p in params if p.ndim <= 1}
    for sub in [] if module is None else module.modules():
        names = getattr(sub, "no_weight_decay", None)
        if callable(names):
            named = dict(sub.named_parameters())
            exempt |= {id(named[n]) for n in names() if n in named}
    return [
        {"params": [p for p in params if id(p) not in exempt]},
        {"params": [p for p in params if id(p) in exempt], "weight_decay": 0.0},
    ]


class Run:
    """The whole mutable state of one training run — exactly what a checkpoint holds.

    ``module`` is everything training changes (the model; for a self-supervised run the method, with
    its momentum teacher or encoder, heads and DINO's centre). Beside it: the AdamW state, the schedule
    (step and total), the torch RNG (drop-path), the augmentation generator, and the position in the
    data stream — one batch per step, so the step is the position. Restoring all of it makes a resumed
    run repeat an uninterrupted one bit for bit on the same machine.
    """

    def __init__(
        self,
        cfg: MiniConfig,
        seed: int,
        module: nn.Module | None,
        params: list[nn.Parameter],
        generator: torch.Generator | None = None,
    ) -> None:
        self.cfg, self.seed, self.module, self.generator = cfg, seed, module, generator
        self.params = params
        self.optimizer = torch.optim.AdamW(_decay_groups(cfg, module, params), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.step, self.total, self.seconds, self.sessions = 0, None, 0.0, 0  # type: ignore[assignment]
        self.total: int | None
        self.lineage = Lineage()

    def state(self) -> dict[str, Any]:
        assert self.module is not None, "a run without a module cannot be checkpointed"
        return {
            "version": CHECKPOINT_VERSION,
            "config": json.dumps(asdict(self.cfg)),
            "seed": self.seed,
            "step": self.step,
            "total": -1 if self.total is None else self.total,
            "seconds": self.seconds,
            "sessions": self.sessions,
            **asdict(self.lineage),
            "module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "generator": None if self.generator is None else self.generator.get_state(),
        }

    def save(self, path: Path) -> None:
        """Atomically: a run killed while writing keeps its previous checkpoint."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)

    def _read(self, path: Path, missing: str, same_config: bool = True) -> dict[str, Any]:
        """A checkpoint of this run's seed (and config), as data only (``weights_only``), or one clear error.

        A config field added after the checkpoint was written counts as unchanged while it holds its
        default, so a new option does not orphan the runs already under way. Fields of the evaluation
        after training (``EVALUATION_ONLY``) may differ: ``--resume`` of a finished run re-evaluates it.
        """
        if not path.is_file():
            raise InputError(f"no checkpoint at {path}; {missing}")
        state: dict[str, Any] = torch.load(path, weights_only=True)
        if state.get("version") != CHECKPOINT_VERSION:
            raise InputError(f"{path} is not a checkpoint of this version of train-mini")
        # The evaluation-only fields act after training: a resumed run may be evaluated anew.
        differ = config_differences(saved_config(state, path), self.cfg, EVALUATION_ONLY)
        if not same_config:
            differ = {k: v for k, v in differ.items() if k == "name"}
        if differ or state["seed"] != self.seed:
            made = "; ".join([f"seed {state['seed']}", *(f"{k} {a!r} (now {b!r})" for k, (a, b) in differ.items())])
            raise InputError(
                f"{path} was made with another config or seed ({made}); "
                "use the same model and --seed, or another --runs folder"
            )
        return state

    def _restore_weights_and_streams(self, state: dict[str, Any]) -> None:
        assert self.module is not None
        try:
            self.module.load_state_dict(state["module"])
        except RuntimeError as exc:  # another architecture or SSL head: say so in one line
            raise InputError(f"the checkpoint does not fit this model: {str(exc).splitlines()[0]}") from None
        torch.set_rng_state(state["torch_rng"])
        if self.generator is not None:
            self.generator.set_state(state["generator"])

    def load(self, path: Path) -> None:
        state = self._read(path, "start the run without --resume")
        self._restore_weights_and_streams(state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.seconds, self.sessions = state["step"], state["seconds"], state["sessions"]
        self.total = None if state["total"] < 0 else state["total"]
        self.lineage = Lineage.read(state)

    def continue_from(self, path: Path, fresh_heads: bool = False) -> None:
        """A warm restart: another run's weights (and random streams), a fresh optimiser and schedule.

        Why not a longer resume: a finished run's learning rate has decayed to zero, and lengthening a
        cosine schedule after the fact would not repeat any run. The new run may change the recipe (not
        the model or seed; the record keeps the checkpoint's path), and it reads the images after the
        earlier runs' (``data_start``), so it never sees one twice.
        """
        method_digest = ""
        if path.suffix == ".safetensors":
            steps, images, seconds = self._continue_from_model_file(path)
            method_digest = "" if fresh_heads else self._continue_method_state(path)
        else:
            state = self._read(path, "give the checkpoint.pt of a run of the same model", same_config=False)
            self._restore_weights_and_streams(state)
            earlier = Lineage.read(state)
            steps = earlier.prior_steps + state["step"]
            images = earlier.prior_images + state["step"] * saved_config(state, path).batch_size
            seconds = earlier.prior_seconds + state["seconds"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        self.lineage = Lineage(steps, images, seconds, str(path), digest, method_digest, fresh_heads)

    def _continue_from_model_file(self, path: Path) -> tuple[int, int, float]:
        """A warm restart from a shipped model (``NAME.safetensors`` + ``NAME.json``): backbone weights only.

        Why: checkpoints live in the git-ignored run folder, which a fresh machine does not have; the
        shipped model is what survives between sessions. Every copy of the backbone (a self-supervised
        method's trained and momentum networks) starts from it; heads, optimiser and random streams start
        afresh. The record beside the weights says how many images the model has seen, so the new run
        reads the images after those. Returns the steps, images and seconds of the model so far.
        """
        from safetensors.torch import load_file

        assert self.module is not None
        record_path = path.with_suffix(".json")
        if not path.is_file() or not record_path.is_file():
            raise InputError(f"{path} needs its record {record_path.name} beside it (a model written by train-mini)")
        record = json.loads(record_path.read_text())
        if record.get("name") != self.cfg.name or record.get("seed") != self.seed:
            raise InputError(
                f"{path} is {record.get('name')!r} with seed {record.get('seed')}, not {self.cfg.name!r} with seed "
                f"{self.seed}; use the same model and --seed"
            )
        images = images_seen(record, record_path)
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
        nets = self.module.backbones() if hasattr(self.module, "backbones") else (self.module,)
        for net in nets:
            try:
                net.load_state_dict(state)
            except RuntimeError as exc:
                raise InputError(f"{path} does not fit this model: {str(exc).splitlines()[0]}") from None
        return record.get("prior_steps", 0) + record["steps"], images, float(record.get("train_seconds", 0.0))

    def _continue_method_state(self, path: Path) -> str:
        """Load the method-state file beside a model file, if there is one; returns its SHA-256 ("": none).

        Why: a warm restart should be able to continue a healthy head as DINO's own resume does, and only
        files in git reach the next machine (a collapsed head is better re-learned: ``Session.fresh_heads``).
        Heads that do not fit the recipe (another ``out_dim``) start afresh, with a warning.
        """
        from safetensors.torch import load

        sidecar = method_state_path(path)
        if not hasattr(self.module, "backbones") or not sidecar.is_file():
            return ""
        data = sidecar.read_bytes()  # read once: loaded and hashed
        saved = load(data)
        current = method_state(cast(nn.Module, self.module))
        if set(saved) != set(current) or any(saved[k].shape != current[k].shape for k in current):
            warnings.warn(
                f"{sidecar.name} does not fit this recipe's heads; they start afresh (the backbone is continued)",
                stacklevel=2,
            )
            return ""
        with torch.no_grad():
            for key, value in current.items():
                value.copy_(saved[key].to(value.dtype))
        return hashlib.sha256(data).hexdigest()

    @property
    def data_start(self) -> int:
        """Position in the run seed's batch stream: after every batch this run and its earlier runs read."""
        return -(-self.lineage.prior_images // self.cfg.batch_size) + self.step

    def start(self, session: Session) -> None:
        """Resume from the session's checkpoint, or begin a new schedule of ``session.steps``."""
        if session.resume:
            assert session.run_dir is not None, "resuming needs a run folder"
            self.load(session.run_dir / CHECKPOINT_NAME)
            if session.steps is not None and self.total is not None and session.steps != self.total:
                raise InputError(f"the checkpoint's schedule is {self.total} steps, not --steps {session.steps}")
        elif session.continue_from is not None:
            self.continue_from(session.continue_from, session.fresh_heads)
        if self.total is None:
            self.total = session.steps

    def fit(
        self,
        step_loss: Callable[[float], torch.Tensor],
        session: Session,
        after_step: Callable[[float], None] | None = None,
        desc: str = "train",
    ) -> Progress:
        """AdamW + warm-up/cosine from the current step until the schedule, budget or ``stop_at`` ends.

        ``step_loss(progress)`` draws its own batch and returns the loss; ``progress`` ∈ [0, 1] drives
        the momentum schedules of the self-supervised methods.
        """
        cfg = self.cfg
        checkpoint = None if session.run_dir is None else session.run_dir / CHECKPOINT_NAME
        calibrate = self.total is None
        budget = session.minutes
        if budget is not None and calibrate:
            budget *= 1.25  # the schedule is sized to the budget: stop early only if the machine slows down
        begin = warm = last_save = time.perf_counter()
        before = self.seconds
        self.sessions += 1
        bar = tqdm(total=self.total, initial=self.step, desc=desc, unit="step", dynamic_ncols=True)
        stopped = "finished"
        with _stop_requests() as stop_requested:
            while self.total is None or self.step < self.total:
                now = time.perf_counter()
                if session.stop_at is not None and self.step >= session.stop_at:
                    stopped = "stop_at"
                    break
                if budget is not None and now - begin >= budget * 60:
                    stopped = "budget"
                    break
                if stop_requested():
                    stopped = "signal"
                    break
                if calibrate and self.step == CALIBRATION_STEPS // 2:
                    warm = now  # the first steps pay for start-up (threads, first data chunk)
                if calibrate and self.step == CALIBRATION_STEPS:
                    per_step = (now - warm) / (CALIBRATION_STEPS - CALIBRATION_STEPS // 2)
                    seconds = (session.minutes or cfg.minutes) * 60 - (warm - begin)
                    self.total = max(CALIBRATION_STEPS + 1, int(seconds / per_step))
                    bar.total = self.total
                total = self.total or 10**9
                loss, lr = self.one_step(step_loss, after_step, total)
                bar.update()
                if self.step % 20 == 0:
                    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.1e}")
                if checkpoint is not None and time.perf_counter() - last_save >= session.checkpoint_seconds:
                    self.seconds = before + time.perf_counter() - begin
                    self.save(checkpoint)
                    last_save = time.perf_counter()
        bar.close()
        self.seconds = before + time.perf_counter() - begin
        if checkpoint is not None:
            self.save(checkpoint)
        assert self.total is not None or stopped != "finished"
        return Progress(self.step, self.total or -1, self.seconds, self.sessions, stopped, self.lineage)

    def one_step(
        self, step_loss: Callable[[float], torch.Tensor], after_step: Callable[[float], None] | None, total: int
    ) -> tuple[float, float]:
        """One optimiser step of a schedule of ``total`` steps (public for ``benchmarks/mini_step_time.py``)."""
        cfg, step = self.cfg, self.step
        # Short runs warm up for 1/5 of the steps at most; the calibration steps (identical in a replay
        # with ``steps``) always follow the configured warm-up, so a replay repeats the run exactly.
        warmup = min(cfg.warmup, total // 5) if step >= CALIBRATION_STEPS else cfg.warmup
        lr = cosine_lr(step, total, cfg.lr, warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        progress = step / total if total < 10**9 else 0.0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = step_loss(progress).float()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.optimizer.step()
        if after_step is not None:
            after_step(progress)
        self.step += 1
        return float(loss.detach()), lr


def optimise(
    params: list[nn.Parameter],
    step_loss: Callable[[float], torch.Tensor],
    cfg: MiniConfig,
    *,
    minutes: float | None = None,
    steps: int | None = None,
    after_step: Callable[[float], None] | None = None,
    desc: str = "train",
) -> tuple[int, float]:
    """One uncheckpointed run of :meth:`Run.fit` (recipe experiments); returns (steps, seconds)."""
    run = Run(cfg, 0, None, params)
    run.start(Session(steps=steps))
    done = run.fit(step_loss, Session(steps=steps, minutes=minutes), after_step, desc)
    return done.step, done.seconds


_M = TypeVar("_M", bound=nn.Module)


def _fast_layout(cfg: MiniConfig, module: _M) -> _M:
    """Convolutional minis train channels-last: oneDNN's CPU convolutions are faster that way, a training
    step 1.3-1.5x (``benchmarks/mini_step_time.py``: DINO ResNet 0.39 vs 0.57 s, MoCo v3 ResNet 0.38 vs
    0.51 s); results differ by float rounding only. Token models have no 4-D activations to gain from it."""
    return module.to(memory_format=torch.channels_last) if cfg.family == "ResNet" else module


def trained_module(cfg: MiniConfig, fast_layout: bool = True) -> nn.Module:
    """What a run of ``cfg`` trains, freshly initialised (seed the RNG first): the model, or the method around it.

    The one place that prepares it — layout, and the position table of a model pre-trained on smaller views
    (set before the method's momentum copy is made) — so training and ``benchmarks/mini_step_time.py``
    time and train the same thing.
    """
    model = backbones.build(cfg.arch)
    if cfg.layer_scale is not None:
        backbones.init_layer_scale(model, cfg.layer_scale)
    if cfg.drop_path is not None:
        backbones.set_drop_path(model, cfg.drop_path)
    if cfg.ssl is None:
        return _fast_layout(cfg, model) if fast_layout else model
    backbones.resample_positions(model, cfg.pretrain_size != backbones.INPUT_SIZE)
    method = ssl_method(cfg, model)
    return _fast_layout(cfg, method) if fast_layout else method


def batch_loss(
    cfg: MiniConfig, module: nn.Module, g: torch.Generator | None = None
) -> Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]:
    """The training loss of one batch ``(images, labels, progress)`` for ``trained_module(cfg)``.

    Supervised: cross-entropy. Self-supervised: the method's own loss (augmentations drawn from ``g``),
    which never reads the labels.
    """
    if cfg.ssl is None:
        return lambda x, y, progress: F.cross_entropy(module(x), y)
    method = cast("Dino | MocoV3", module)
    assert g is not None, "a self-supervised loss draws its augmentations from a generator"
    return lambda images, _labels_never_used, progress: method.loss(images, progress, g)


def train_supervised(cfg: MiniConfig, seed: int, session: Session) -> tuple[nn.Module, Progress]:
    """Cross-entropy end to end on fresh scenes."""
    torch.manual_seed(seed)
    model = trained_module(cfg)
    model.train()
    run = Run(cfg, seed, model, list(model.parameters()))
    run.start(session)
    data = batches(seed, cfg.batch_size, start=run.data_start)
    loss = batch_loss(cfg, model)
    done = run.fit(lambda progress: loss(*next(data), progress), session, desc=cfg.name)
    data.close()
    return model, done


def ssl_method(cfg: MiniConfig, model: nn.Module) -> Dino | MocoV3:
    """The config's self-supervised method around ``model``; options left at None keep the method's defaults."""
    from camscope.lab.augment import CropSpec
    from camscope.lab.dino import GLOBAL_SCALE, Dino, multi_crop
    from camscope.lab.moco import PAIR, MocoV3

    options: dict[str, Any] = {"base_momentum": cfg.momentum}
    if cfg.ssl == "dino":
        options |= {"teacher_temp": cfg.teacher_temp, "out_dim": cfg.out_dim}
        options["freeze_last_layer"] = cfg.freeze_last_layer
        options |= {"centering": cfg.centering, "koleo": cfg.koleo}
        options["crops"] = multi_crop(cfg.pretrain_size, cfg.global_scale or GLOBAL_SCALE, cfg.local_crops)
        return Dino(model, **{k: v for k, v in options.items() if v is not None})
    options["temperature"] = cfg.temperature
    options["crop"] = CropSpec(2, cfg.pretrain_size, cfg.global_scale or PAIR.scale)
    return MocoV3(model, **{k: v for k, v in options.items() if v is not None})


def pretrain(cfg: MiniConfig, seed: int, session: Session) -> tuple[Dino | MocoV3, Progress]:
    """Self-supervised pre-training by the config's method; no label is ever read."""
    torch.manual_seed(seed)
    method = cast("Dino | MocoV3", trained_module(cfg))
    method.train()
    g = torch.Generator().manual_seed(seed)
    run = Run(cfg, seed, method, method.trainable_parameters(), g)
    run.start(session)
    data = batches(
        seed,
        cfg.batch_size,
        normalise=False,
        start=run.data_start,
        background_pool=cfg.background_pool,
        plain_objects=cfg.plain_objects,
        twins=cfg.paired_views,
    )

    loss = batch_loss(cfg, method, g)
    done = run.fit(
        lambda progress: loss(*next(data), progress),
        session,
        after_step=method.update_momentum,
        desc=f"{cfg.name} ({cfg.ssl})",
    )
    data.close()
    return method, done


def method_state_path(model_file: Path) -> Path:
    """``NAME.method.safetensors`` beside ``NAME.safetensors``."""
    return model_file.with_name(model_file.name.removesuffix(".safetensors") + METHOD_SUFFIX)


def method_state(method: nn.Module) -> dict[str, torch.Tensor]:
    """A self-supervised method's state outside its backbone copies: heads, predictor, DINO's centre.

    The tensors share storage with the method's (copying into them loads a state). The backbone copies
    are left out because the shipped model file already holds the evaluated one.
    """
    nets = cast("Dino | MocoV3", method).backbones()
    copies = {name for name, child in method.named_children() if any(child is net for net in nets)}
    return {k: v for k, v in method.state_dict().items() if k.split(".", 1)[0] not in copies}


def pretrain_and_probe(cfg: MiniConfig, seed: int, session: Session) -> tuple[Dino | MocoV3, Progress, dict[str, Any]]:
    """Self-supervised pre-training (no labels read), then a linear probe on the frozen backbone.

    Returns the method; the probed model is its ``evaluated_backbone()``.
    """
    method, done = pretrain(cfg, seed, session)
    model = method.evaluated_backbone()
    backbones.resample_positions(model, False)  # evaluated at the input size of its position table
    start = time.perf_counter()
    probe = linear_probe(model, seed, cfg.probe_images)
    probe_seconds = time.perf_counter() - start
    info = {
        "pretrain_seconds": round(done.lineage.prior_seconds + done.seconds, 1),
        "probe_seconds": round(probe_seconds, 1),
        "ssl_hyperparameters": method.hyperparameters(),
        **probe,
    }
    return method, done, info


@torch.inference_mode()
def frozen_features(model: nn.Module, images: np.ndarray) -> torch.Tensor:
    """Pooled features (what the head reads) of uint8 scenes, 256 at a time, in eval mode."""
    model.eval()
    x = to_input(images)
    return torch.cat([backbones.features(model, x[i : i + 256]) for i in range(0, len(x), 256)])


def probe_features(
    model: nn.Module,
    n: int,
    seed: int,
    features: Callable[[nn.Module, np.ndarray], torch.Tensor] = frozen_features,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen features and labels of the run seed's ``n`` linear-probe images (never trained on).

    ``features`` maps the model and uint8 scenes to one row per scene: by default what the head reads;
    benchmarks pass other readouts of the same model and images.
    """
    from camscope.data.synthetic import generate

    feats, labels = [], []
    for start in range(0, n, 1024):
        data = generate(min(1024, n - start), probe_seed(seed, start // 1024))
        feats.append(features(model, data.images))
        labels.append(torch.from_numpy(data.labels))
    return torch.cat(feats), torch.cat(labels)


def probe_seed(seed: int, chunk: int) -> int:
    """Generator seed of the ``chunk``-th 1024 linear-probe images of run seed ``seed``."""
    return PROBE_SEED_BASE + seed * 10_000 + chunk


def fit_linear(feats: torch.Tensor, labels: torch.Tensor, classes: int, seed: int, epochs: int = 100) -> nn.Linear:
    """A linear classifier on ``feats``, with their standardisation folded into its weights (AdamW, cosine)."""
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mean) / std
    torch.manual_seed(seed)
    linear = nn.Linear(z.shape[1], classes)
    optimizer = torch.optim.AdamW(linear.parameters(), lr=1e-2, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    for _ in tqdm(range(epochs), desc="linear probe", unit="epoch", dynamic_ncols=True):
        for idx in torch.randperm(len(z)).split(256):
            loss = F.cross_entropy(linear(z[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
    with torch.no_grad():  # fold: linear((x − mean) / std) = (W / std) x + (b − W · mean / std)
        weight, bias = linear.weight / std, linear.bias - (linear.weight * (mean / std)).sum(1)
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return linear


@torch.no_grad()
def linear_accuracy(linear: nn.Module, feats: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy (%) of a fitted probe on features: the one scoring of every probe, fitted or tested."""
    return float((linear(feats).argmax(1) == labels).float().mean() * 100)


def effective_rank(feats: torch.Tensor) -> float:
    """exp of the entropy of the centred features' normalised squared singular values (Roy & Vetterli, 2007).

    Why: a self-supervised model can collapse partially, its features spanning a few directions; ten
    separable classes need about nine. The number is stored beside the probe so the collapse is seen.
    """
    s = torch.linalg.svdvals((feats - feats.mean(0)).double())
    p = s**2 / (s**2).sum()
    return float(torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum()))


def linear_probe(model: nn.Module, seed: int, n: int = 8192, epochs: int = 100) -> dict[str, Any]:
    """Fit the model's own head on frozen pooled features (:func:`fit_linear`) and write it into the model.

    The backbone is never updated (BatchNorm statistics included: features are taken in eval mode).
    """
    for p in model.parameters():
        p.requires_grad_(False)
    feats, labels = probe_features(model, n, seed)
    linear = fit_linear(feats, labels, backbones.NUM_CLASSES, seed, epochs)
    train_acc = linear_accuracy(linear, feats, labels)
    with torch.no_grad():
        head = backbones.head_of(model)
        head.weight.copy_(linear.weight)
        head.bias.copy_(linear.bias)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    return {
        "probe_images": n,
        "probe_epochs": epochs,
        "probe_train_accuracy": round(train_acc, 2),
        "feature_effective_rank": round(effective_rank(feats), 2),
    }


def check_figures(model: nn.Module) -> dict[str, float | int]:
    """Accuracy and object-removed accuracy on the first CHECK_N test images, as the tests measure them."""
    return {
        "check_images": CHECK_N,
        "check_accuracy": round(accuracy(model, CHECK_N, TEST_SEED), 2),
        "check_counterfactual_accuracy": round(accuracy(model, CHECK_N, TEST_SEED, counterfactual=True), 2),
    }


def _machine() -> str:
    """CPU model and thread count, for the record (the same run is slower or faster elsewhere)."""
    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name} ({os.cpu_count()} cores), {torch.get_num_threads()} torch thread(s)"


def _fp16(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}


def save(
    model: nn.Module, cfg: MiniConfig, info: dict[str, Any], out: Path, seed: int, method: nn.Module | None = None
) -> dict[str, Any]:
    """Write ``NAME.safetensors`` (fp16) and ``NAME.json``; the figures are measured on the fp16 file.

    With ``method`` (self-supervised runs) also ``NAME.method.safetensors`` (fp16), so that a warm restart
    from the shipped model keeps the method's heads (:meth:`Run._continue_method_state`).
    """
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{cfg.name}.safetensors"
    save_file(_fp16(model.state_dict()), str(path))
    sidecar = method_state_path(path)
    if method is not None:
        save_file(_fp16(method_state(method)), str(sidecar))
    else:
        sidecar.unlink(missing_ok=True)
    shipped = backbones.build(cfg.arch)
    shipped.load_state_dict(load_file(str(path)), strict=True)
    shipped.eval()
    import timm
    import torchvision

    steps, total = info["steps"], info["schedule_steps"]
    command = f"camscope train-mini --model {cfg.name} --seed {seed} --steps {total}"
    continued = f" --continue-from {info['continued_from']}" if info.get("continued_from") else ""
    continued += " --fresh-heads" if info.get("fresh_heads") else ""
    record = {
        "name": cfg.name,
        "family": cfg.family,
        "training": training_kind(cfg.ssl, cfg.paired_views),
        "ssl_method": SSL_NAMES.get(cfg.ssl or ""),
        "paired_views": cfg.paired_views,
        "architecture": str(backbones.ARCHS[cfg.arch].build),
        "parameters": sum(p.numel() for p in shipped.parameters()),
        "test_accuracy": round(accuracy(shipped, TEST_N, TEST_SEED), 2),
        "counterfactual_accuracy": round(accuracy(shipped, TEST_N, TEST_SEED, counterfactual=True), 2),
        "test_seed": TEST_SEED,
        "test_images": TEST_N,
        **check_figures(shipped),
        "seed": seed,
        "batch_size": cfg.batch_size,
        "train_minutes": round(info["train_seconds"] / 60, 1),
        **info,
        "config": asdict(cfg),
        "weights": path.name,
        "weights_bytes": path.stat().st_size,
        "method_state": sidecar.name if method is not None else None,
        "dtype": "float16",
        "torch": torch.__version__,
        "timm": timm.__version__,
        "torchvision": torchvision.__version__,
        "machine": _machine(),
        "command": command + (f" --stop-at {steps}" if steps < total else "") + continued,
    }
    (out / f"{cfg.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _better(record: dict[str, Any], folder: Path) -> bool:
    """Whether ``record`` beats the record of the same model in ``folder`` (or there is none)."""
    existing = folder / f"{record['name']}.json"
    if not existing.is_file():
        return True
    return record["test_accuracy"] > json.loads(existing.read_text())["test_accuracy"]


def _copy_model(src: Path, dst: Path, name: str) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json", METHOD_SUFFIX):
        if not (src / f"{name}{suffix}").is_file():  # a supervised model has no method state: drop a stale one
            (dst / f"{name}{suffix}").unlink(missing_ok=True)
            continue
        shutil.copyfile(src / f"{name}{suffix}", dst / f"{name}{suffix}.tmp")
        os.replace(dst / f"{name}{suffix}.tmp", dst / f"{name}{suffix}")


def train(
    name: str,
    out: Path | None = WEIGHTS_DIR,
    minutes: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    threads: int = 1,
    *,
    runs: Path = RUNS_DIR,
    resume: bool = False,
    stop_at: int | None = None,
    cfg: MiniConfig | None = None,
    continue_from: Path | None = None,
    fresh_heads: bool = False,
) -> dict[str, Any]:
    """Train (or resume) one mini model; returns the record of the model as it stands after this session.

    The checkpoint lives in ``runs/NAME/``. At the end of every session — schedule finished, budget
    spent, ``stop_at`` reached or a stop signal — the model is evaluated (self-supervised: linear probe
    first) and written to ``runs/NAME/last/``; it becomes ``runs/NAME/``'s best record if it beats it,
    and is copied to ``out`` (the packaged zoo by default) only if it beats the record there.
    The returned record says which of these happened (``kept_as_best``, ``shipped``).
    """
    torch.set_num_threads(threads)
    cfg = cfg or CONFIGS[name]
    run_dir = Path(runs) / cfg.name
    session = Session(
        run_dir=run_dir,
        resume=resume,
        steps=steps,
        minutes=minutes,
        stop_at=stop_at,
        continue_from=continue_from,
        fresh_heads=fresh_heads,
    )
    info: dict[str, Any] = {}
    method = None
    if cfg.ssl is None:
        model, done = train_supervised(cfg, seed, session)
    else:
        method, done, info = pretrain_and_probe(cfg, seed, session)
        model = method.evaluated_backbone()
    info = {
        "steps": done.step,
        "schedule_steps": done.total,
        "complete": done.complete,
        "stopped": done.stopped,
        "sessions": done.sessions,
        "train_seconds": round(done.lineage.prior_seconds + done.seconds + info.get("probe_seconds", 0.0), 1),
        "images": done.lineage.prior_images + done.step * cfg.batch_size,
        **asdict(done.lineage),
        **info,
    }
    record = save(model, cfg, info, run_dir / "last", seed, method)
    record["kept_as_best"] = _better(record, run_dir)
    if record["kept_as_best"]:
        _copy_model(run_dir / "last", run_dir, cfg.name)
    record["shipped"] = out is not None and _better(record, Path(out))
    if record["shipped"]:
        _copy_model(run_dir / "last", Path(out), cfg.name)
    return record
