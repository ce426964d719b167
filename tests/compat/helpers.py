"""The migration harness: a pytorch-grad-cam script, run as written and with its package name replaced.

Each scenario is source text written against ``pytorch_grad_cam`` (the peer's README, usage examples and
tutorials, on tiny seeded random-weight models and generated images: nothing is downloaded).
:func:`migrate` runs it twice — as written, and after ``s/pytorch_grad_cam/camscope/g``, the switch the
README promises — from the same seeds and fresh copies of its inputs, and returns both namespaces.
"""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn

PEER, OURS = "pytorch_grad_cam", "camscope"
SIZE = 64  # input side: every model here works at 64 x 64


def switched(source: str) -> str:
    """The scenario after the one-line switch."""
    return source.replace(PEER, OURS)


def run(source: str, package: str, given: dict[str, Any]) -> dict[str, Any]:
    """Execute the scenario for ``package`` from fixed seeds, with deep copies of ``given``."""
    code = textwrap.dedent(source)
    if package == OURS:
        code = switched(code)
    namespace: dict[str, Any] = {"__name__": f"scenario_{package}", **copy.deepcopy(given)}
    torch.manual_seed(0)
    np.random.seed(0)
    exec(compile(code, f"<{package} scenario>", "exec"), namespace)
    return namespace


def migrate(source: str, **given: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the peer's namespace, camscope's namespace) after running ``source`` both ways."""
    return run(source, PEER, given), run(source, OURS, given)


def as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def assert_same(
    peer: dict[str, Any],
    ours: dict[str, Any],
    names: Iterable[str],
    atol: float = 1e-4,
    colored: dict[str, str] | None = None,
) -> None:
    """Each named result equal: float arrays (maps, scores) to ``atol``, lists item by item, uint8 pictures to
    one grey level (the truncation of a float that differs by ≤ ``atol``).

    ``colored`` maps a picture drawn through a colour map to the map it shows: where the two maps fall in
    different 1/255 bins (a difference of ~1e-6 can straddle a bin edge) the colours legitimately differ,
    so those pixels are left out; everywhere else the one-level rule holds.
    """
    colored = colored or {}
    for name in names:
        skip = None
        if name in colored:
            a, b = as_array(peer[colored[name]]), as_array(ours[colored[name]])
            skip = np.floor(255 * a) != np.floor(255 * b)
            assert skip.mean() < 0.01, f"{name}: {skip.sum()} pixels of {colored[name]} change colour bin"
        _assert_close(peer[name], ours[name], atol, name, skip)


def _assert_close(a: Any, b: Any, atol: float, where: str, skip: np.ndarray | None = None) -> None:
    if isinstance(a, str):
        assert a == b, f"{where}: {a!r} vs {b!r}"
        return
    if isinstance(a, (list, tuple)) and not isinstance(a, str) and not _numeric(a):
        assert len(a) == len(b), f"{where}: {len(a)} items vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, atol, f"{where}[{i}]")
        return
    x, y = as_array(a), as_array(b)
    assert x.shape == y.shape, f"{where}: shape {x.shape} vs {y.shape}"
    assert (x.dtype == np.uint8) == (y.dtype == np.uint8), f"{where}: dtype {x.dtype} vs {y.dtype}"
    diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
    if x.dtype == np.uint8:
        if skip is not None:
            diff[skip.reshape(diff.shape[:2])] = 0
        assert np.all(diff <= 1), f"{where}: pictures differ by up to {diff.max()} levels"
        return
    assert np.all(diff <= atol), f"{where}: max |peer - camscope| = {np.nanmax(diff)} > {atol}"


def _numeric(values: Any) -> bool:
    return all(isinstance(v, (int, float, np.number)) for v in values)


def seeded(build: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build().eval()


def resnet18(num_classes: int = 300) -> nn.Module:
    """torchvision's ResNet-18, random weights from seed 0 (the peer's examples use ResNet-50)."""
    return seeded(lambda: torchvision.models.resnet18(num_classes=num_classes))


def scene(size: int = SIZE, seed: int = 0) -> np.ndarray:
    """A float32 RGB image in [0, 1]: smooth gradients with two bright discs, so maps have structure."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([xx, yy, 0.5 * (xx + yy)], axis=-1)
    for cy, cx, r in ((0.3, 0.3, 0.15), (0.7, 0.65, 0.2)):
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        img[disc] = rng.uniform(0.3, 1.0, 3)
    return np.float32(np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1))
