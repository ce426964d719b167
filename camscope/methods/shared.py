"""Many methods, one pass: methods that read the same layers for the same targets share a forward+backward.

A study runs many methods on the same model and images, and most CAMs differ only in the formula they
apply to one layer's activations and gradients. Each method declares what it reads
(:meth:`BaseCAM.reads`); :func:`compute_many` groups the methods whose declarations name the same pass
(model, layers, reshape transform), runs that pass once per group with the union of what its members
ask for (gradients at the layers, at the input), and hands the one :class:`CamState` to each member's
:meth:`BaseCAM.maps_from_state`. Each map is the one the method computes alone: the pass is the same
computation, and an extra gradient never changes activations or another gradient.

A method joins by declaration: any :class:`BaseCAM` whose maps come from :meth:`~BaseCAM.maps_from_state`
of the pass it declares is shared. One that runs passes of its own (overrides ``forward_pass``,
``_maps`` or ``compute``, or sets ``shares_pass = False``) is run alone, unchanged.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial, reduce

import torch

from camscope.core.capture import eval_mode
from camscope.core.errors import CamscopeWarning, InputError
from camscope.core.targets import TargetSpec
from camscope.methods.base import BaseCAM, Reads, augment, capture_state, deaugment, input_mismatch

_OWN_PASS_HOOKS = ("forward_pass", "_maps", "_augmented_maps", "compute", "__call__")


def shares_pass(cam: BaseCAM) -> bool:
    """Whether ``cam``'s maps are exactly ``maps_from_state`` of the pass it declares (so it can share it)."""
    cls = type(cam)
    return cls.shares_pass and all(getattr(cls, name) is getattr(BaseCAM, name) for name in _OWN_PASS_HOOKS)


def pass_groups(cams: Sequence[BaseCAM]) -> list[list[int]]:
    """Indices of ``cams`` grouped by the pass they read, in first-appearance order; unshared ones alone."""
    groups: dict[object, list[int]] = {}
    for index, cam in enumerate(cams):
        key = cam.reads().key if shares_pass(cam) else ("alone", index)
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def compute_many(
    cams: Sequence[BaseCAM],
    input_tensor: torch.Tensor,
    targets: TargetSpec = None,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
    seconds: list[float] | None = None,
    caught: list[list[warnings.WarningMessage]] | None = None,
) -> list[torch.Tensor]:
    """The maps of each of ``cams`` (tensors on the model's device, as :meth:`BaseCAM.compute` returns),
    with one pass of the model per group of methods that read the same layers.

    ``seconds``, if given, receives each method's cost: its own computation plus an equal share of the
    pass it shared; ``caught``, if given, receives each method's warnings (recorded, not shown).
    """
    maps: list[torch.Tensor | None] = [None] * len(cams)
    cost = [0.0] * len(cams)
    records: list[list[warnings.WarningMessage]] = [[] for _ in cams]

    def run(index: int, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        if caught is None:
            return fn()
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always", CamscopeWarning)
            out = fn()
        records[index] = list(got)
        return out

    for group in pass_groups(cams):
        members = [cams[i] for i in group]
        start = time.perf_counter()
        if len(members) == 1:
            cam = members[0]
            maps[group[0]] = run(
                group[0], partial(cam.compute, input_tensor, targets, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
            )
            cost[group[0]] = time.perf_counter() - start
            continue
        first = members[0]
        x = first._check_input(input_tensor)
        reads: Reads = reduce(Reads.merge, (cam.reads() for cam in members))
        try:
            with eval_mode(first.model), torch.inference_mode(False):
                batch, batch_targets = augment(x, targets) if aug_smooth else (x, targets)
                state = capture_state(reads, batch, batch_targets)
                share = (time.perf_counter() - start) / len(members)
                for index, cam in zip(group, members):
                    own = time.perf_counter()
                    cam.outputs = state.logits
                    result = run(index, partial(cam.maps_from_state, state, eigen_smooth))
                    maps[index] = deaugment(result, x.shape[0]) if aug_smooth else result
                    cost[index] = share + time.perf_counter() - own
        except (RuntimeError, AssertionError, ValueError) as exc:  # as BaseCAM.compute: say what the input lacks
            problem = input_mismatch(first.model, x)
            if problem is None:
                raise
            raise InputError(problem) from exc
    if seconds is not None:
        seconds[:] = cost
    if caught is not None:
        caught[:] = records
    return [m for m in maps if m is not None]
