"""What a CAM explains: one scalar per image, taken from the model's output.

A target is any callable mapping one image's output row (shape ``(num_classes,)``) to a scalar
tensor, exactly as in pytorch-grad-cam, so its targets work here unchanged. The classes below also
know their class index, which lets the engine validate it against the output size and score a whole
batch with one gather instead of a Python loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from camscope.errors import TargetError

Target = Callable[[torch.Tensor], torch.Tensor]
TargetSpec = None | int | Target | Sequence[int | Target | None]


class ClassifierOutputTarget:
    """The raw logit of class ``category``."""

    def __init__(self, category: int) -> None:
        self.category = int(category)

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        if model_output.ndim == 1:
            return model_output[self.category]
        return model_output[:, self.category]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.category})"


class ClassifierOutputSoftmaxTarget(ClassifierOutputTarget):
    """The softmax probability of class ``category``."""

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model_output, dim=-1)[..., self.category]


def model_logits(output: Any) -> torch.Tensor:
    """The class scores of a model output: a tensor, the first item of a tuple/list, or ``.logits``."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(output, dict) and isinstance(output.get("logits"), torch.Tensor):
        logits_entry: torch.Tensor = output["logits"]
        return logits_entry
    raise TargetError(
        f"cannot find class scores in a model output of type {type(output).__name__}: "
        "expected a tensor, a tuple whose first item is a tensor, or an object with .logits"
    )


def resolve_targets(targets: TargetSpec, logits: torch.Tensor) -> list[Target]:
    """One target per image of the batch.

    ``None`` explains each image's top-1 class; an int or a single target callable is broadcast to
    every image (documented behaviour); a sequence must have exactly one entry per image (an entry
    may be None for top-1). Class indices are checked against the number of outputs.
    """
    if logits.ndim != 2:
        raise TargetError(f"expected class scores of shape (batch, classes), got {tuple(logits.shape)}")
    n, num_classes = logits.shape
    if targets is None or isinstance(targets, int) or callable(targets):
        entries: list[Any] = [targets] * n
    else:
        entries = list(targets)
        if len(entries) != n:
            raise TargetError(
                f"got {len(entries)} targets for a batch of {n} images: give one target per image, "
                "or a single target to use for every image"
            )
    top1 = logits.argmax(dim=1).tolist() if any(e is None for e in entries) else []
    resolved: list[Target] = []
    for i, entry in enumerate(entries):
        if entry is None:
            entry = ClassifierOutputTarget(top1[i])
        elif isinstance(entry, bool):
            raise TargetError(f"target {entry!r} is not a class index or a callable")
        elif isinstance(entry, int):
            entry = ClassifierOutputTarget(entry)
        elif not callable(entry):
            raise TargetError(f"target {entry!r} is not a class index or a callable")
        category = getattr(entry, "category", None)
        if isinstance(category, int) and not -num_classes <= category < num_classes:
            raise TargetError(
                f"target class {category} is out of range: the model has {num_classes} classes (0..{num_classes - 1})"
            )
        resolved.append(entry)
    return resolved


def target_scores(targets: Sequence[Target], logits: torch.Tensor) -> torch.Tensor:
    """Score of each image's target, shape ``(N,)``; ``logits[i]`` belongs to ``targets[i]``.

    Plain ClassifierOutputTarget / SoftmaxTarget batches are scored with one gather.
    """
    kinds = {type(t) for t in targets}
    if len(targets) == logits.shape[0] and kinds <= {ClassifierOutputTarget, ClassifierOutputSoftmaxTarget}:
        index = torch.tensor([t.category for t in targets], device=logits.device)  # type: ignore[attr-defined]
        if len(kinds) == 1:
            values = torch.softmax(logits, dim=-1) if ClassifierOutputSoftmaxTarget in kinds else logits
            return values.gather(1, index[:, None] % logits.shape[1])[:, 0]
    return torch.stack([torch.as_tensor(t(row)).reshape(()) for t, row in zip(targets, logits)])


def repeated_target_scores(target: Target, logits: torch.Tensor) -> torch.Tensor:
    """Score one target on many outputs of the same image (perturbation methods, metrics): ``(M,)``."""
    if type(target) in (ClassifierOutputTarget, ClassifierOutputSoftmaxTarget):
        return target(logits)
    return torch.stack([torch.as_tensor(target(row)).reshape(()) for row in logits])
