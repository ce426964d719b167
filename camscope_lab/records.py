"""The record beside a trained mini model's weights, and moving a run's model between folders.

A train-mini run writes ``NAME.safetensors`` (fp16), ``NAME.json`` (its record: figures measured on the
fp16 file, the config, the command that replays it, the machine) and, for a self-supervised model,
``NAME.method.safetensors`` (the method's heads, for a warm restart). The record is what the zoo's
tests and reports read, and what a warm restart counts its images from.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from camscope.core.errors import InputError
from camscope.models import mini_archs as backbones
from camscope.models.mini import SSL_NAMES, TEST_SEED, training_kind
from camscope_lab.config import MiniConfig
from camscope_lab.data import accuracy

if TYPE_CHECKING:
    from camscope_lab.dino import Dino
    from camscope_lab.moco import MocoV3

TEST_N = 1000  # images in the recorded test set (TEST_SEED)
CHECK_N = 500  # the first CHECK_N of them: what the test suite re-measures from the shipped file (fast CI)
# Beside a self-supervised model file: what its method trained besides the backbone (heads, predictor, centre).
METHOD_SUFFIX = ".method.safetensors"
MODEL_SUFFIXES = (".safetensors", ".json", METHOD_SUFFIX)


def method_state_path(model_file: Path) -> Path:
    """``NAME.method.safetensors`` beside ``NAME.safetensors``."""
    return model_file.with_name(model_file.name.removesuffix(".safetensors") + METHOD_SUFFIX)


def method_state(method: nn.Module) -> dict[str, torch.Tensor]:
    """A self-supervised method's state outside its backbone copies: heads, predictor, DINO's centre.

    The tensors share storage with the method's (copying into them loads a state). The backbone copies
    are left out because the model file already holds the evaluated one.
    """
    nets = cast("Dino | MocoV3", method).backbones()
    copies = {name for name, child in method.named_children() if any(child is net for net in nets)}
    return {k: v for k, v in method.state_dict().items() if k.split(".", 1)[0] not in copies}


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
    """Write ``NAME.safetensors`` (fp16) and ``NAME.json`` into ``out``; the figures are measured on the fp16 file.

    With ``method`` (self-supervised runs) also ``NAME.method.safetensors`` (fp16), so that a warm restart
    from the model file keeps the method's heads (``Run.continue_from`` in :mod:`camscope_lab.loop`).
    """
    import timm
    import torchvision
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{cfg.name}.safetensors"
    save_file(_fp16(model.state_dict()), str(path))
    sidecar = method_state_path(path)
    if method is not None:
        save_file(_fp16(method_state(method)), str(sidecar))
    else:
        sidecar.unlink(missing_ok=True)
    written = backbones.build(cfg.arch)
    written.load_state_dict(load_file(str(path)), strict=True)
    written.eval()

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
        "parameters": sum(p.numel() for p in written.parameters()),
        "test_accuracy": round(accuracy(written, TEST_N, TEST_SEED), 2),
        "counterfactual_accuracy": round(accuracy(written, TEST_N, TEST_SEED, counterfactual=True), 2),
        "test_seed": TEST_SEED,
        "test_images": TEST_N,
        **check_figures(written),
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


def better(record: dict[str, Any], folder: Path) -> bool:
    """Whether ``record`` beats the record of the same model in ``folder`` (or there is none)."""
    existing = folder / f"{record['name']}.json"
    if not existing.is_file():
        return True
    return bool(record["test_accuracy"] > json.loads(existing.read_text())["test_accuracy"])


def copy_model(src: Path, dst: Path, name: str) -> None:
    """Copy a model's files from ``src`` to ``dst``, each atomically; a file ``src`` lacks is removed from ``dst``
    (a supervised model has no method state: a stale one must not stay beside it)."""
    dst.mkdir(parents=True, exist_ok=True)
    for suffix in MODEL_SUFFIXES:
        if not (src / f"{name}{suffix}").is_file():
            (dst / f"{name}{suffix}").unlink(missing_ok=True)
            continue
        shutil.copyfile(src / f"{name}{suffix}", dst / f"{name}{suffix}.tmp")
        os.replace(dst / f"{name}{suffix}.tmp", dst / f"{name}{suffix}")


def read_record(folder: Path) -> dict[str, Any]:
    """The one train-mini record in ``folder`` (a run folder ``RUNS/NAME`` or its ``last/``), or one clear error."""
    records = [p for p in sorted(folder.glob("*.json")) if p.with_suffix(".safetensors").is_file()]
    if len(records) != 1:
        found = "none" if not records else ", ".join(p.name for p in records)
        raise InputError(
            f"{folder} should hold one model written by train-mini (NAME.json and NAME.safetensors), found {found}"
        )
    record: dict[str, Any] = json.loads(records[0].read_text())
    if record.get("name") != records[0].stem or "command" not in record:
        raise InputError(f"{records[0]} is not a train-mini record")
    return record
