"""The one definition of a device choice: ``auto`` (a GPU when present), ``cpu``, ``cuda`` or ``cuda:i``.

Sweeps (``device = ...`` in a config), ``camscope explain / evaluate / demo / app --device`` and the app
all read a device through here, so they accept the same words and refuse bad ones with the same message.
"""

from __future__ import annotations

import torch

from camscope.core.errors import InputError

DEVICE_CHOICES = "auto (a GPU when present), cpu, cuda or cuda:i"


def check_device(device: object) -> str:
    """``device`` if it names a usable device here (or ``"auto"``); otherwise an :class:`InputError`."""
    if not isinstance(device, str):
        raise InputError(f"device must be a string such as 'cpu', 'cuda' or 'auto', got {device!r}")
    if device == "auto":
        return device
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InputError(f"device {device!r} is not a torch device (use {DEVICE_CHOICES})") from None
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device {device!r} is not supported (use {DEVICE_CHOICES})")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} asked for, but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {device!r} asked for, but only {torch.cuda.device_count()} GPU(s) are here")
    return device


def resolve_device(device: str) -> torch.device:
    """The torch device for a checked choice (``auto`` → ``cuda`` when available, else ``cpu``)."""
    if check_device(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
