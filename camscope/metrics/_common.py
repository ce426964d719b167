"""Shared plumbing of the metrics: input checks, batched scoring, image-space conversion.

Every metric runs its forward passes through :func:`score_batches`, which builds the perturbed
inputs chunk by chunk (``batch_size`` at a time) under ``torch.inference_mode()``: peak memory grows
with the batch size, never with the number of steps or percentiles.

Whole, unperturbed images (the clean inputs, a curve's start and finish images) go through
:func:`image_logits` instead, which a :class:`ForwardMemo` makes run once per distinct image: each
metric call reuses its own clean forward, and a caller that scores many maps of the same images
(the sweep worker: every method of a shard) shares them across calls with :func:`shared_forwards`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from camscope.core.errors import MetricInputError
from camscope.core.outputs import Detections, Outputs, read_output, read_scores
from camscope.core.progress import steps
from camscope.core.targets import (
    ClassifierOutputSoftmaxTarget,
    ClassifierOutputTarget,
    Target,
    TargetSpec,
    resolve_targets,
    target_scores,
)

# ImageNet normalisation, the default of every metric that works in image space (re-exported)
from camscope.data.imagenet import IMAGENET_MEAN as IMAGENET_MEAN
from camscope.data.imagenet import IMAGENET_STD as IMAGENET_STD

ArrayLike = np.ndarray | torch.Tensor


def check_inputs(inputs: torch.Tensor, maps: ArrayLike | None = None) -> torch.Tensor | None:
    """Validate ``inputs`` (N, C, H, W) and ``maps`` (N, H, W); return the maps as a float32 CPU tensor."""
    if not isinstance(inputs, torch.Tensor) or inputs.ndim != 4 or not inputs.is_floating_point():
        shape = tuple(inputs.shape) if hasattr(inputs, "shape") else type(inputs).__name__
        raise MetricInputError(f"expected an input batch as a float tensor (N, C, H, W), got {shape}")
    if inputs.shape[0] == 0:
        raise MetricInputError("the input batch is empty")
    if maps is None:
        return None
    return check_maps(maps, (inputs.shape[0], inputs.shape[2], inputs.shape[3]))


def check_maps(
    maps: ArrayLike,
    shape: tuple[int, int, int] | None = None,
    *,
    keep_device: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Maps as a float32 (or ``dtype``) CPU tensor (N, H, W) (``keep_device``: on the device a tensor
    is on); wrong shape or non-finite values raise MetricInputError."""
    if isinstance(maps, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(maps))
    elif isinstance(maps, torch.Tensor):
        tensor = maps.detach() if keep_device else maps.detach().cpu()
    else:
        raise MetricInputError(f"maps must be a numpy array or a tensor, got {type(maps).__name__}")
    if tensor.ndim != 3:
        raise MetricInputError(f"maps must have shape (N, H, W), got {tuple(tensor.shape)}: one 2-D map per image")
    if shape is not None and tuple(tensor.shape) != tuple(shape):
        raise MetricInputError(
            f"maps of shape {tuple(tensor.shape)} do not fit the input batch: expected {tuple(shape)} "
            "(one map per image, at the input's height and width)"
        )
    tensor = tensor.to(dtype)
    if not torch.isfinite(tensor).all():
        raise MetricInputError("maps contain NaN or infinite values")
    return tensor


@dataclass
class ImageScores:
    """One score per image (N,) under the metric's column ``name``."""

    name: str
    scores: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.scores.mean())

    def summary(self) -> dict[str, np.ndarray]:
        return {self.name: self.scores.astype(np.float64)}


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise MetricInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def channel_stats(
    inputs: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean`` and ``std`` as (1, C, 1, 1) tensors on the inputs' device and dtype."""
    c = inputs.shape[1]
    if len(mean) != c or len(std) != c:
        raise MetricInputError(f"mean/std need one value per channel ({c}), got {len(mean)}/{len(std)}")
    if any(float(s) == 0 for s in std):
        raise MetricInputError("std must not contain zeros")
    device, dtype = inputs.device, inputs.dtype
    return (
        torch.tensor(mean, device=device, dtype=dtype).view(1, c, 1, 1),
        torch.tensor(std, device=device, dtype=dtype).view(1, c, 1, 1),
    )


@torch.inference_mode()
def forward_outputs(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> Outputs:
    """The model's outputs for ``inputs``, batched (no memo), read by the one output adapter
    (:func:`camscope.core.outputs.read_output`): scores, dense scores, or a detector's detections."""
    chunks = [read_output(model(chunk)) for chunk in torch.split(inputs, batch_size)]
    tensors = [chunk for chunk in chunks if isinstance(chunk, torch.Tensor)]
    if len(tensors) == len(chunks):
        return torch.cat(tensors)
    return Detections([image for chunk in chunks if isinstance(chunk, Detections) for image in chunk])


def stack_rows(rows: Sequence[Any]) -> Outputs:
    """One output per image (a tensor row, or a detector's dict) as a batch of outputs."""
    if all(isinstance(row, torch.Tensor) for row in rows):
        return torch.stack(list(rows))
    return Detections(rows)


def forward_logits(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Score tensors of ``inputs``, batched (no memo): :func:`forward_outputs` for code that needs a tensor."""
    return read_scores(forward_outputs(model, inputs, batch_size))


class ForwardMemo:
    """The model's logits for whole images it has already seen, keyed by each image's bytes.

    Why: a study scores the same images many times. Each metric resolves its targets on the clean
    logits; every deletion curve starts from the clean image and ends on the substrate, every insertion
    curve starts from the blurred image and ends on the clean one; and these images do not depend on
    the map. A memo runs each distinct image once (identical images in one call, e.g. the all-zeros
    substrate of every image, once too). Valid while the model does not change: keep a memo to the
    scope of one model (the sweep keeps one per model × shard).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._logits: dict[bytes, Any] = {}  # one image's output: a tensor row or a detector's dict

    @staticmethod
    def _key(image: torch.Tensor) -> bytes:
        data = image.detach().cpu().contiguous()
        digest = hashlib.blake2b(data.view(torch.uint8).numpy().tobytes(), digest_size=16).digest()
        return digest + f"{data.dtype}{tuple(data.shape)}".encode()

    def knows(self, images: torch.Tensor) -> bool:
        """Whether the outputs of every image of ``images`` are stored."""
        return all(self._key(image) in self._logits for image in images)

    def remember(self, images: torch.Tensor, logits: Outputs) -> None:
        """Store outputs the caller already computed for ``images`` (row i belongs to image i)."""
        for image, row in zip(images, logits):
            self._logits[self._key(image)] = (
                row.detach() if isinstance(row, torch.Tensor) else {k: v.detach() for k, v in row.items()}
            )

    @torch.inference_mode()
    def outputs(self, images: torch.Tensor, batch_size: int) -> Outputs:
        """Outputs of ``images``: stored rows reused, each distinct new image run once, in batches."""
        keys = [self._key(image) for image in images]
        first: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in self._logits:
                first.setdefault(key, i)
        if first:
            unseen = images[list(first.values())]
            self.remember(unseen, forward_outputs(self.model, unseen, batch_size))
        return stack_rows([self._logits[key] for key in keys])

    def logits(self, images: torch.Tensor, batch_size: int) -> torch.Tensor:
        """:meth:`outputs` for code that needs a score tensor (a detector's boxes are refused)."""
        return read_scores(self.outputs(images, batch_size))

    def __len__(self) -> int:
        return len(self._logits)


_ACTIVE_MEMO: ContextVar[ForwardMemo | None] = ContextVar("camscope_forward_memo", default=None)


@contextlib.contextmanager
def shared_forwards(model: nn.Module, memo: ForwardMemo | None = None) -> Iterator[ForwardMemo]:
    """Within the block, whole-image forwards of ``model`` go through one memo (``memo``, the one already
    active for this model, or a new one), so metrics called in the block share them."""
    active = _ACTIVE_MEMO.get()
    if memo is None:
        memo = active if active is not None and active.model is model else ForwardMemo(model)
    elif memo.model is not model:
        raise ValueError("the memo belongs to another model")
    token = _ACTIVE_MEMO.set(memo)
    try:
        yield memo
    finally:
        _ACTIVE_MEMO.reset(token)


def image_logits(model: nn.Module, images: torch.Tensor, batch_size: int) -> Outputs:
    """Outputs of whole images, through the active memo of ``model`` when there is one."""
    memo = _ACTIVE_MEMO.get()
    if memo is None or memo.model is not model:
        return forward_outputs(model, images, batch_size)
    return memo.outputs(images, batch_size)


def resolve(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: TargetSpec,
    batch_size: int,
    *,
    probability: bool,
) -> tuple[list[Target], Outputs]:
    """Resolve targets on the clean inputs' outputs (any the output adapter reads); return them with those outputs.

    With ``probability=True``, class-index targets (None, int, ClassifierOutputTarget) become the
    softmax probability of that class, as the deletion/insertion, average drop and ROAD papers score;
    any other callable is applied to the logits unchanged (give one that returns a probability if you
    want one).
    """
    logits = image_logits(model, inputs, batch_size)
    return _resolved(targets, logits, probability), logits


def _resolved(targets: TargetSpec, logits: Outputs, probability: bool) -> list[Target]:
    resolved = resolve_targets(targets, logits)
    if probability:
        resolved = [
            ClassifierOutputSoftmaxTarget(t.category) if type(t) is ClassifierOutputTarget else t for t in resolved
        ]
    return resolved


def score_batches(
    model: nn.Module,
    targets: Sequence[Target],
    items: Sequence[Any],
    build: Callable[[Sequence[Any]], tuple[torch.Tensor, Sequence[int]]],
    batch_size: int,
) -> np.ndarray:
    """Score perturbed inputs, built and run ``batch_size`` at a time.

    ``build(chunk)`` turns a chunk of ``items`` into (inputs, image index of each row); row ``j`` is
    scored with ``targets[image_index[j]]``. Returns float64 scores, one per item, in item order.
    Each chunk reports progress and can be cancelled (:mod:`camscope.core.progress`).
    """
    out = np.empty(len(items), dtype=np.float64)
    with torch.inference_mode():
        for start, chunk in steps(list(_chunks(items, batch_size)), "scoring", bar=False):
            batch, owners = build(chunk)
            out[start : start + len(chunk)] = _scores([targets[i] for i in owners], model(batch))
    return out


def score_batches_with_clean(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: TargetSpec,
    items: Sequence[Any],
    build: Callable[[Sequence[Any]], tuple[torch.Tensor, Sequence[int]]],
    batch_size: int,
    *,
    probability: bool,
) -> tuple[list[Target], np.ndarray, np.ndarray]:
    """:func:`resolve` and :func:`score_batches` in one: (targets, their clean scores, scores of ``items``).

    Why: a metric needs the clean forward (to resolve its targets, often for the clean score too) and
    then its perturbed forwards; where the clean logits are not known yet (no memo holds them), the clean
    images ride in the first perturbed forward instead of a forward of their own, which on a CPU costs
    about as much as a full batch (the per-forward overhead), and on a GPU as many kernel launches. The
    first forward is then ``batch_size`` perturbed rows plus the N clean images; only where N is at most
    an eighth of ``batch_size``, so the peak memory a caller sized with ``batch_size`` grows by 12.5 % at
    most (a larger N is a forward whose overhead is a small share anyway). ``build`` must not depend on
    the targets.
    """
    with shared_forwards(model) as memo:
        if not items or inputs.shape[0] > batch_size // 8 or memo.knows(inputs):
            resolved, logits = resolve(model, inputs, targets, batch_size, probability=probability)
            clean = target_scores(resolved, logits).double().cpu().numpy()
            return resolved, clean, score_batches(model, resolved, items, build, batch_size)
        n = inputs.shape[0]
        out = np.empty(len(items), dtype=np.float64)
        with torch.inference_mode():
            for start, chunk in steps(list(_chunks(items, batch_size)), "scoring", bar=False):
                batch, owners = build(chunk)
                if start:
                    out[start : start + len(chunk)] = _scores([resolved[i] for i in owners], model(batch))
                    continue
                joint = read_output(model(torch.cat([inputs, batch.to(inputs.dtype)])))
                clean_outputs = joint[:n] if isinstance(joint, torch.Tensor) else Detections(joint.images[:n])
                memo.remember(inputs, clean_outputs)
                resolved = _resolved(targets, clean_outputs, probability)
                scores = _scores([*resolved, *(resolved[i] for i in owners)], joint)
                clean, out[: len(chunk)] = scores[:n], scores[n:]
    return resolved, clean, out


def _scores(targets: Sequence[Target], output: Any) -> np.ndarray:
    """Row i of the model's ``output`` scored with ``targets[i]`` (float64)."""
    scores: np.ndarray = target_scores(targets, read_output(output)).double().cpu().numpy()
    return scores


def _chunks(items: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def as_numpy_bool(values: Iterable[bool]) -> np.ndarray:
    return np.asarray(list(values), dtype=bool)


def attributions(maps: ArrayLike, *, abs: bool, normalise: bool) -> torch.Tensor:
    """Maps as float64 rows (N, H·W) on their own device, prepared as Quantus prepares explanations:
    divided by their largest magnitude (``normalise``), then made non-negative (``abs``).

    Why per map: Quantus divides by the largest magnitude of the whole batch, so an image's score would
    depend on the other images it is scored with; on maps already scaled to a maximum of 1 (every
    camscope map) the two agree. An all-zero map is left as it is.
    """
    a = check_maps(maps, keep_device=True, dtype=torch.float64)
    a = a.reshape(len(a), -1)
    if normalise:
        peak = a.abs().amax(dim=1, keepdim=True)
        a = a / torch.where(peak > 0, peak, torch.ones_like(peak))
    return a.abs() if abs else a


# The x axis of every curve that removes pixels in rank order (deletion, ROAD).
REMOVED = "fraction of pixels removed"
