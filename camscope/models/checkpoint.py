"""Reading checkpoint files safely, converting official formats, loading strictly.

Official files come in many containers (``{'model': …}``, ``{'state_dict': {'module.' + k}}``,
extra optimizer state and ``argparse.Namespace`` objects). Each weights file of a spec lists the
small conversion steps that turn it into (part of) the model's state dict; one loader runs them
for every model. Files are unpickled with ``weights_only=True`` (tensors and plain containers,
plus a short allow-list of harmless classes), never with arbitrary code execution, and a state
dict is only loaded if it fits the architecture exactly.
"""

from __future__ import annotations

import argparse
import importlib
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from camscope.core.errors import WeightsError

StateDict = dict[str, torch.Tensor]


def _safe_globals() -> list[Any]:
    """Classes official checkpoints carry next to their tensors that are safe to rebuild."""
    allowed: list[Any] = [argparse.Namespace]
    try:  # numpy scalars/dtypes appear in metrics such as best_acc in older checkpoints
        import numpy as np

        multiarray = getattr(np, "_core", None) or np.core
        allowed += [multiarray.multiarray.scalar, np.dtype]
        allowed += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    except (ImportError, AttributeError):  # pragma: no cover - numpy is a dependency
        pass
    return allowed


def read_checkpoint(path: Path) -> Any:
    """Load ``path`` without running code from it: safetensors, or ``torch.load(weights_only=True)``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({exc}); download it again") from exc
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if not found and not _looks_like_checkpoint(path):
            raise WeightsError(
                f"{path}: not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle; "
                "corrupt or another format); download it again"
            ) from None
        if not found and "Unsupported operand" in str(exc):
            raise WeightsError(
                f"{path}: a pickle that the safe loader cannot read (an unsupported pickle instruction: "
                "corrupt, or not written by torch.save); save the state dict with torch.save or as safetensors"
            ) from None
        if found or "Unsupported" in str(exc) or "weights_only" in str(exc):
            what = found.group(1) if found else "an object that is not a tensor"
            raise WeightsError(
                f"{path}: refusing to unpickle {what} (only tensors and plain containers are loaded); "
                "save the state dict alone or as safetensors"
            ) from exc
        raise WeightsError(f"{path}: not a readable checkpoint ({exc}); download it again") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable checkpoint ({_first_line(exc)}); download it again") from exc


def _looks_like_checkpoint(path: Path) -> bool:
    """A torch.save file starts as a zip archive (PK) or, in the legacy format, a pickle (0x80 protocol byte)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return head == b"PK" or head[:1] == b"\x80"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --- conversion steps: (checkpoint object, model) -> checkpoint object -------------------------------


@dataclass(frozen=True)
class Take:
    """Take ``container[key]`` (e.g. 'model', never 'model_ema'); refuse other containers."""

    key: str

    def __call__(self, obj: Any, model: nn.Module) -> Any:
        if not isinstance(obj, Mapping) or self.key not in obj:
            keys = sorted(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
            raise WeightsError(f"expected a checkpoint dict with key {self.key!r}, found {keys}")
        return obj[self.key]


@dataclass(frozen=True)
class Unwrap:
    """Take the first of ``keys`` that is present, else keep the object (for unknown sources)."""

    keys: tuple[str, ...] = ("state_dict", "model")

    def __call__(self, obj: Any, model: nn.Module) -> Any:
        if isinstance(obj, Mapping):
            for key in self.keys:
                if isinstance(obj.get(key), Mapping):
                    return obj[key]
        return obj


@dataclass(frozen=True)
class StripPrefix:
    """Remove ``prefix`` from the keys that have it (``'module.'`` from DistributedDataParallel)."""

    prefix: str

    def __call__(self, obj: Any, model: nn.Module) -> Any:
        return {k[len(self.prefix) :] if k.startswith(self.prefix) else k: v for k, v in _state(obj).items()}


@dataclass(frozen=True)
class RenamePrefix:
    """Rename keys starting with ``old`` to start with ``new`` (a linear head → the model's fc)."""

    old: str
    new: str

    def __call__(self, obj: Any, model: nn.Module) -> Any:
        return {self.new + k[len(self.old) :] if k.startswith(self.old) else k: v for k, v in _state(obj).items()}


@dataclass(frozen=True)
class DropPrefix:
    """Drop keys under ``prefix`` that belong to another file (a backbone file's classifier)."""

    prefix: str

    def __call__(self, obj: Any, model: nn.Module) -> Any:
        return {k: v for k, v in _state(obj).items() if not k.startswith(self.prefix)}


@dataclass(frozen=True)
class TimmFilter:
    """timm's own converter for official checkpoints, ``timm.models.<module>.checkpoint_filter_fn``."""

    module: str

    def __call__(self, obj: Any, model: nn.Module) -> Any:
        filter_fn = importlib.import_module(f"timm.models.{self.module}").checkpoint_filter_fn
        return filter_fn(dict(_state(obj)), model)  # a copy: some filters pop keys in place


def _state(obj: Any) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise WeightsError(f"expected a state dict, found {type(obj).__name__}")
    return obj


def convert(obj: Any, steps: tuple[Any, ...], model: nn.Module, source: str) -> StateDict:
    """Run ``steps`` on a loaded checkpoint; the result must be a flat ``{name: tensor}`` dict."""
    try:
        for step in steps:
            obj = step(obj, model)
    except WeightsError as exc:
        raise WeightsError(f"{source}: {exc}") from exc
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        found = sorted(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise WeightsError(f"{source}: not a state dict of tensors after conversion (found {found})")
    return dict(obj)


def load_strict(model: nn.Module, state: StateDict, source: str) -> None:
    """Load ``state`` only if its keys and shapes match the model exactly; list the differences if not.

    BatchNorm's ``num_batches_tracked`` counters, absent from older official files and unused in
    evaluation, are the one tolerated omission (PyTorch itself fills them in for such files).
    """
    expected = model.state_dict()
    state = dict(state)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} (file {_shape(state[k])}, model {_shape(expected[k])})"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        parts = [
            _listing("missing", missing),
            _listing("unexpected", unexpected),
            _listing("wrong shape", wrong),
        ]
        raise WeightsError(
            f"{source} does not fit {type(model).__name__}: "
            + "; ".join(p for p in parts if p)
            + " — is it the right file for this model?"
        )
    _check_finite(state, source)
    model.load_state_dict(state, strict=True)


def _check_finite(state: StateDict, source: str) -> None:
    """Refuse weights with NaN or infinite values: such a model gives NaN outputs and meaningless maps."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsError(
            f"{source}: {len(bad)} tensor(s) hold NaN or infinite values ({', '.join(bad[:4])}"
            f"{', …' if len(bad) > 4 else ''}); the file is damaged or from a diverged training run"
        )


def _listing(label: str, items: list[str], limit: int = 4) -> str:
    if not items:
        return ""
    more = f", … {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} {label} ({', '.join(items[:limit])}{more})"


def _shape(tensor: torch.Tensor) -> str:
    return "×".join(str(d) for d in tensor.shape) or "scalar"
