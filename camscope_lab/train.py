"""Training the mini zoo: what a run of a recipe trains, and one run from start to written record.

Training is on CPU with one thread by default, seeded, on freshly generated images per chunk: on the
2-core machine two threads make one run only ~1.7× faster, so two one-thread runs side by side finish
more (and on contended cores one thread was ~8× faster than two).

Supervised minis train end to end with cross-entropy. Self-supervised minis are pre-trained without
labels by their own method (:mod:`camscope_lab.dino`, :mod:`camscope_lab.moco`), then the backbone
is frozen and a linear classifier is fitted on its pooled features and written into the model's
own head (:mod:`camscope_lab.probe`) — the same recipe as the seed's DINO and MoCo v3 linear-evaluation
checkpoints. Everything a run writes goes under the runs folder it is given; copying a finished model
into the zoo is a separate step (:mod:`camscope_lab.ship`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from camscope.models import mini_archs as backbones
from camscope_lab.config import CONFIGS, MiniConfig
from camscope_lab.data import batches
from camscope_lab.loop import Progress, Run, Session
from camscope_lab.probe import linear_probe
from camscope_lab.records import better, copy_model, save

if TYPE_CHECKING:
    from camscope_lab.dino import Dino
    from camscope_lab.moco import MocoV3

_M = TypeVar("_M", bound=nn.Module)


def _fast_layout(cfg: MiniConfig, module: _M) -> _M:
    """Convolutional minis train channels-last: oneDNN's CPU convolutions are faster that way, a training
    step 1.3-1.5x (``camscope_lab/experiments/mini_step_time.py``: DINO ResNet 0.39 vs 0.57 s, MoCo v3 ResNet 0.38 vs
    0.51 s); results differ by float rounding only. Token models have no 4-D activations to gain from it."""
    return module.to(memory_format=torch.channels_last) if cfg.family == "ResNet" else module


def trained_module(cfg: MiniConfig, fast_layout: bool = True) -> nn.Module:
    """What a run of ``cfg`` trains, freshly initialised (seed the RNG first): the model, or the method around it.

    The one place that prepares it — layout, and the position table of a model pre-trained on smaller views
    (set before the method's momentum copy is made) — so training and ``camscope_lab/experiments/mini_step_time.py``
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
    from camscope_lab.augment import CropSpec
    from camscope_lab.dino import GLOBAL_SCALE, Dino, multi_crop
    from camscope_lab.moco import PAIR, MocoV3

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


def train(
    name: str,
    runs: Path,
    minutes: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    threads: int = 1,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    cfg: MiniConfig | None = None,
    continue_from: Path | None = None,
    fresh_heads: bool = False,
) -> dict[str, Any]:
    """Train (or resume) one mini model; returns the record of the model as it stands after this session.

    The checkpoint lives in ``runs/NAME/``. At the end of every session — schedule finished, budget
    spent, ``stop_at`` reached or a stop signal — the model is evaluated (self-supervised: linear probe
    first) and written to ``runs/NAME/last/``; it becomes ``runs/NAME/``'s best model if it beats it
    (the returned record's ``kept_as_best``). Nothing is written outside ``runs``: shipping the best model
    into the zoo is :func:`camscope_lab.ship.ship`, a separate step.
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
    record["kept_as_best"] = better(record, run_dir)
    if record["kept_as_best"]:
        copy_model(run_dir / "last", run_dir, cfg.name)
    return record
