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

import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from camscope.lab.data import PROBE_SEED_BASE, TEST_SEED, accuracy, batches, to_input
from camscope.models import mini_archs as backbones
from camscope.models.mini import MINI, SSL_NAMES, mini_entry
from camscope.models.weights import PACKAGED_DIR

WEIGHTS_DIR = PACKAGED_DIR  # training writes where the zoo reads packaged weights
TEST_N = 1000  # images in the recorded test set (TEST_SEED)
CHECK_N = 500  # the first CHECK_N of them: what the test suite re-measures from the shipped file (fast CI)
CALIBRATION_STEPS = 20


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
    probe_images: int = 8192
    grad_clip: float | None = None  # max global gradient norm (the transformers: steadier from scratch)
    teacher_temp: float | None = None  # DINO's teacher temperature (None: DINO's default, 0.04)
    bf16: bool = False  # bfloat16 autocast: ~1.5× faster for the convolutional models on CPUs with AMX

    @property
    def family(self) -> str:
        return backbones.ARCHS[self.arch].family


# DINO at lr 1e-3 collapsed to the uniform output as its warm-up ended (loss flat at ln 512 = 6.24 from
# step ~200, linear probe 11.9 %); DINO's own rule, 5e-4 × batch / 256, gives 1.25e-4 at batch 64.
# At 2.5e-4 it still drifted to ln 512, with the default teacher temperature (XCiT) and with the
# sharper 0.02 the DINO authors suggest against this collapse (ResNet): see the records' figures.
_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "mini_resnet": dict(lr=2e-3, batch_size=32, warmup=30, minutes=12.0, bf16=True),
    "mini_deit": dict(lr=5e-4, warmup=200, grad_clip=1.0, minutes=40.0),
    "mini_cait": dict(lr=5e-4, warmup=200, grad_clip=1.0, minutes=30.0),
    "mini_swin": dict(lr=5e-4, warmup=200, grad_clip=1.0, minutes=30.0, bf16=True),
    "mini_xcit": dict(batch_size=32, minutes=20.0),
    "mini_dino_resnet": dict(lr=2.5e-4, teacher_temp=0.02, minutes=10.0, bf16=True),
    "mini_dino_xcit": dict(lr=2.5e-4, minutes=15.0),
    "mini_mocov3_resnet": dict(minutes=10.0, bf16=True),
    "mini_mocov3_vit": dict(lr=5e-4, warmup=200, grad_clip=1.0, minutes=15.0),
}


def _config(name: str) -> MiniConfig:
    """The training config of ``name``: architecture and method from the zoo's list, the rest from here."""
    entry = mini_entry(name)
    return MiniConfig(name, entry.arch, entry.ssl, **_HYPERPARAMETERS[name])


# Every mini model of the zoo has a training config, and nothing else does.
assert set(_HYPERPARAMETERS) == {e.name for e in MINI}, "mini zoo and training configs disagree"
CONFIGS: dict[str, MiniConfig] = {e.name: _config(e.name) for e in MINI}


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return base * (step + 1) / warmup
    return 0.5 * base * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


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
    """AdamW + warm-up/cosine over ``steps`` (or as many as fit in ``minutes``); returns (steps, seconds).

    ``step_loss(progress)`` draws its own batch and returns the loss; ``progress`` ∈ [0, 1] drives
    the momentum schedules of the self-supervised methods.
    """
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = steps or 10**9
    start = warm = time.perf_counter()
    bar = tqdm(total=steps, desc=desc, unit="step", dynamic_ncols=True)
    step = 0
    while step < total:
        if steps is None and step == CALIBRATION_STEPS // 2:
            warm = time.perf_counter()  # the first steps pay for start-up (threads, first data chunk)
        if steps is None and step == CALIBRATION_STEPS:
            per_step = (time.perf_counter() - warm) / (CALIBRATION_STEPS - CALIBRATION_STEPS // 2)
            total = max(CALIBRATION_STEPS + 1, int(((minutes or cfg.minutes) * 60 - (warm - start)) / per_step))
            bar.total = total
        # Short runs warm up for 1/5 of the steps at most; the calibration steps (identical in a replay
        # with ``steps``) always follow the configured warm-up, so a replay repeats the run exactly.
        warmup = min(cfg.warmup, total // 5) if step >= CALIBRATION_STEPS else cfg.warmup
        lr = cosine_lr(step, total, cfg.lr, warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        progress = step / total if total < 10**9 else 0.0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = step_loss(progress).float()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        if after_step is not None:
            after_step(progress)
        step += 1
        bar.update()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.1e}")
    bar.close()
    return step, time.perf_counter() - start


def train_supervised(
    cfg: MiniConfig, seed: int, minutes: float | None, steps: int | None
) -> tuple[nn.Module, dict[str, Any]]:
    """Cross-entropy end to end on fresh scenes."""
    torch.manual_seed(seed)
    model = backbones.build(cfg.arch)
    model.train()
    data = batches(seed, cfg.batch_size)

    def step_loss(progress: float) -> torch.Tensor:
        x, y = next(data)
        return F.cross_entropy(model(x), y)

    done, seconds = optimise(list(model.parameters()), step_loss, cfg, minutes=minutes, steps=steps, desc=cfg.name)
    data.close()
    return model, {"steps": done, "train_seconds": round(seconds, 1)}


def pretrain_and_probe(
    cfg: MiniConfig, seed: int, minutes: float | None, steps: int | None
) -> tuple[nn.Module, dict[str, Any]]:
    """Self-supervised pre-training (no labels read), then a linear probe on the frozen backbone."""
    from camscope.lab.dino import Dino
    from camscope.lab.moco import MocoV3

    torch.manual_seed(seed)
    model = backbones.build(cfg.arch)
    dino_options = {} if cfg.teacher_temp is None else {"teacher_temp": cfg.teacher_temp}
    method: Dino | MocoV3 = Dino(model, **dino_options) if cfg.ssl == "dino" else MocoV3(model)
    method.train()
    data = batches(seed, cfg.batch_size, normalise=False)
    g = torch.Generator().manual_seed(seed)

    def step_loss(progress: float) -> torch.Tensor:
        images, _labels_never_used = next(data)
        return method.loss(images, progress, g)

    done, seconds = optimise(
        method.trainable_parameters(),
        step_loss,
        cfg,
        minutes=minutes,
        steps=steps,
        after_step=method.update_momentum,
        desc=f"{cfg.name} ({cfg.ssl})",
    )
    data.close()
    model = method.evaluated_backbone()
    start = time.perf_counter()
    probe = linear_probe(model, seed, cfg.probe_images)
    probe_seconds = time.perf_counter() - start
    info = {
        "steps": done,
        "pretrain_seconds": round(seconds, 1),
        "probe_seconds": round(probe_seconds, 1),
        "train_seconds": round(seconds + probe_seconds, 1),
        "ssl_hyperparameters": method.hyperparameters(),
        **probe,
    }
    return model, info


@torch.inference_mode()
def _features(model: nn.Module, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from camscope.data.synthetic import generate

    model.eval()
    feats, labels = [], []
    for start in range(0, n, 1024):
        data = generate(min(1024, n - start), PROBE_SEED_BASE + seed * 10_000 + start // 1024)
        x = to_input(data.images)
        feats += [backbones.features(model, x[i : i + 256]) for i in range(0, len(x), 256)]
        labels.append(torch.from_numpy(data.labels))
    return torch.cat(feats), torch.cat(labels)


def linear_probe(model: nn.Module, seed: int, n: int = 8192, epochs: int = 100) -> dict[str, Any]:
    """Fit the model's own head on frozen pooled features; standardisation is folded into the head.

    The backbone is never updated (BatchNorm statistics included: features are taken in eval mode).
    """
    for p in model.parameters():
        p.requires_grad_(False)
    feats, labels = _features(model, n, seed)
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mean) / std
    torch.manual_seed(seed)
    linear = nn.Linear(z.shape[1], backbones.NUM_CLASSES)
    optimizer = torch.optim.AdamW(linear.parameters(), lr=1e-2, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    for _ in tqdm(range(epochs), desc="linear probe", unit="epoch", dynamic_ncols=True):
        for idx in torch.randperm(len(z)).split(256):
            loss = F.cross_entropy(linear(z[idx]), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
    with torch.no_grad():
        train_acc = float((linear(z).argmax(1) == labels).float().mean() * 100)
        head = backbones.head_of(model)
        head.weight.copy_(linear.weight / std)
        head.bias.copy_(linear.bias - (linear.weight * (mean / std)).sum(1))
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    return {"probe_images": n, "probe_epochs": epochs, "probe_train_accuracy": round(train_acc, 2)}


def check_figures(model: nn.Module) -> dict[str, float | int]:
    """Accuracy and object-removed accuracy on the first CHECK_N test images, as the tests measure them."""
    return {
        "check_images": CHECK_N,
        "check_accuracy": round(accuracy(model, CHECK_N, TEST_SEED), 2),
        "check_counterfactual_accuracy": round(accuracy(model, CHECK_N, TEST_SEED, counterfactual=True), 2),
    }


def save(model: nn.Module, cfg: MiniConfig, info: dict[str, Any], out: Path, seed: int) -> dict[str, Any]:
    """Write ``NAME.safetensors`` (fp16) and ``NAME.json``; the figures are measured on the fp16 file."""
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{cfg.name}.safetensors"
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    shipped = backbones.build(cfg.arch)
    shipped.load_state_dict(load_file(str(path)), strict=True)
    shipped.eval()
    import timm
    import torchvision

    record = {
        "name": cfg.name,
        "family": cfg.family,
        "training": "supervised" if cfg.ssl is None else "self-supervised",
        "ssl_method": SSL_NAMES.get(cfg.ssl or ""),
        "architecture": str(backbones.ARCHS[cfg.arch].build),
        "parameters": sum(p.numel() for p in shipped.parameters()),
        "test_accuracy": round(accuracy(shipped, TEST_N, TEST_SEED), 2),
        "counterfactual_accuracy": round(accuracy(shipped, TEST_N, TEST_SEED, counterfactual=True), 2),
        "test_seed": TEST_SEED,
        "test_images": TEST_N,
        **check_figures(shipped),
        "seed": seed,
        **info,
        "config": asdict(cfg),
        "weights": path.name,
        "weights_bytes": path.stat().st_size,
        "dtype": "float16",
        "torch": torch.__version__,
        "timm": timm.__version__,
        "torchvision": torchvision.__version__,
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s)",
        "command": f"camscope train-mini --model {cfg.name} --seed {seed} --steps {info['steps']}",
    }
    (out / f"{cfg.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def train(
    name: str,
    out: Path = WEIGHTS_DIR,
    minutes: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    threads: int = 1,
) -> dict[str, Any]:
    """Train one mini model and save its weights and record in ``out``; returns the record."""
    torch.set_num_threads(threads)
    cfg = CONFIGS[name]
    trainer = train_supervised if cfg.ssl is None else pretrain_and_probe
    model, info = trainer(cfg, seed, minutes, steps)
    return save(model, cfg, info, Path(out), seed)
