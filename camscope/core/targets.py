"""What a CAM explains: one scalar per image, taken from the model's output.

A target is any callable mapping one image's output row (shape ``(num_classes,)``) to a scalar
tensor, exactly as in pytorch-grad-cam, so its targets work here unchanged. The classes below also
know their class index, which lets the engine validate it against the output size and score a whole
batch with one gather instead of a Python loop.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from camscope.core.errors import TargetError

Target = Callable[[torch.Tensor], torch.Tensor]
TargetSpec = None | int | Target | Sequence[int | Target | None]


class ClassifierOutputTarget:
    """The raw logit of class ``category``."""

    def __init__(self, category: int) -> None:
        index = class_index(category)
        if index is None:
            raise _bad_target(category)
        self.category = index

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


def class_index(value: Any) -> int | None:
    """``value`` as a class index if it is one (int, numpy integer, 0-d integer tensor/array), else None.

    Floats are refused rather than truncated (``3.7`` is almost surely a mistake, not class 3), and
    negative indices too: ``-1`` would silently mean "the last class", which is never what a user asks.
    """
    if isinstance(value, torch.Tensor):
        if value.ndim != 0 or value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            return None
        value = int(value.item())
    elif isinstance(value, np.ndarray):
        if value.ndim != 0 or value.dtype.kind not in "iu":
            return None
        value = int(value.item())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        return None
    index = int(value)
    if index < 0:
        raise TargetError(f"target class {index} is negative: class indices start at 0")
    return index


def is_single_target(targets: Any) -> bool:
    """True for one target meant for every image (None, an index, a callable), False for a sequence."""
    if targets is None or callable(targets) or isinstance(targets, (numbers.Number, np.generic, str, bytes)):
        return True
    return isinstance(targets, (torch.Tensor, np.ndarray)) and targets.ndim == 0


def _bad_target(entry: Any) -> TargetError:
    if isinstance(entry, (float, np.floating)) or (isinstance(entry, (torch.Tensor, np.ndarray)) and entry.ndim == 0):
        return TargetError(f"target {entry!r} is not a class index: give an int such as 3 (not a float)")
    return TargetError(f"target {entry!r} is not a class index or a callable")


def resolve_targets(targets: TargetSpec, logits: torch.Tensor) -> list[Target]:
    """One target per image of the batch.

    ``None`` explains each image's top-1 class; an int or a single target callable is broadcast to
    every image (documented behaviour); a sequence must have exactly one entry per image (an entry
    may be None for top-1). Class indices are checked against the number of outputs.
    """
    if logits.ndim != 2:
        raise TargetError(f"expected class scores of shape (batch, classes), got {tuple(logits.shape)}")
    n, num_classes = logits.shape
    if is_single_target(targets):
        entries: list[Any] = [targets] * n
    else:
        entries = list(targets)  # type: ignore[arg-type]
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
        elif not callable(entry):
            index = class_index(entry)
            if index is None:
                raise _bad_target(entry)
            entry = ClassifierOutputTarget(index)
        category = getattr(entry, "category", None) if getattr(entry, "category_is_class", True) else None
        if isinstance(category, int) and not 0 <= category < num_classes:
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


# ---------------------------------------------------------------------------- label-free targets
def _embedding_rows(embeddings: Any, name: str) -> torch.Tensor:
    rows = torch.as_tensor(embeddings).detach()
    if rows.ndim == 1:
        rows = rows[None]
    if rows.ndim != 2 or rows.shape[0] == 0 or not rows.is_floating_point():
        raise TargetError(f"{name} must be a float embedding (D,) or a non-empty stack (M, D), got {tuple(rows.shape)}")
    return rows


def _embedding(output: torch.Tensor, reference: torch.Tensor, name: str) -> torch.Tensor:
    if output.shape[-1] != reference.shape[-1]:
        raise TargetError(
            f"{name} has {reference.shape[-1]} dimensions but the model outputs {output.shape[-1]}: "
            "compute it with the same backbone (load_model(name, head=False))"
        )
    return reference.to(device=output.device, dtype=output.dtype)


class SimilarityTarget:
    """Similarity of the model's embedding to a reference embedding (label-free explanation).

    ``kind="cosine"``: cos(f(x̃), r) — pytorch-grad-cam's "pixel attribution for embeddings", e.g. r the
    embedding of another image or a concept. ``kind="dot"``: ⟨f(x̃), r⟩ — Label-Free XAI (Crabbé & van
    der Schaar 2022); use it to explain an image by its *own* embedding r = f(x): the cosine's gradient
    vanishes at x̃ = x (the cosine is maximal there), so a gradient map of an image's cosine to itself is
    all zeros.
    """

    def __init__(self, reference_embedding: Any, kind: str = "cosine") -> None:
        if kind not in ("cosine", "dot"):
            raise TargetError(f"SimilarityTarget kind must be 'cosine' or 'dot', got {kind!r}")
        rows = _embedding_rows(reference_embedding, "reference_embedding")
        if rows.shape[0] != 1:
            raise TargetError(f"reference_embedding must be one embedding, got {rows.shape[0]}")
        self.reference = rows[0]
        self.kind = kind

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        reference = _embedding(model_output, self.reference, "reference_embedding")
        if self.kind == "dot":
            return (model_output * reference).sum(dim=-1)
        return torch.nn.functional.cosine_similarity(model_output, reference.expand_as(model_output), dim=-1)

    def __repr__(self) -> str:
        return f"SimilarityTarget(dim={self.reference.shape[0]}, kind={self.kind!r})"


class CorpusTarget:
    """COCOA (Lin et al., 2023): mean cosine to a corpus minus mean cosine to a foil (if given),

    g(x̃) = mean_{c ∈ corpus} cos(f(x̃), f(c)) − mean_{r ∈ foil} cos(f(x̃), f(r)).
    """

    def __init__(self, corpus: Any, foil: Any = None) -> None:
        self.corpus = _embedding_rows(corpus, "corpus")
        self.foil = None if foil is None else _embedding_rows(foil, "foil")

    @staticmethod
    def _mean_cosine(output: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        unit = torch.nn.functional.normalize(rows, dim=-1)
        return (torch.nn.functional.normalize(output, dim=-1) @ unit.T).mean(dim=-1)

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        score = self._mean_cosine(model_output, _embedding(model_output, self.corpus, "corpus"))
        if self.foil is not None:
            score = score - self._mean_cosine(model_output, _embedding(model_output, self.foil, "foil"))
        return score

    def __repr__(self) -> str:
        foil = 0 if self.foil is None else self.foil.shape[0]
        return f"CorpusTarget(corpus={self.corpus.shape[0]}, foil={foil})"


def own_embedding_targets(embeddings: torch.Tensor) -> list[SimilarityTarget]:
    """One ``SimilarityTarget(f(x_i), "dot")`` per image: explain each image by its own embedding."""
    return [SimilarityTarget(row, kind="dot") for row in embeddings.detach()]


# ---------------------------------------------------------------------------- targets of newer CAMs
class ClassifierOutputReST:
    """ReST (ShapleyCAM, Cai et al. 2025): the logit minus the cross-entropy, y_c − CE(y, c).

    It uses the logit and the softmax together, so its Hessian is not zero even for a linear head.
    """

    def __init__(self, category: int) -> None:
        self.category = int(category)

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        log_probs = torch.log_softmax(model_output, dim=-1)[..., self.category]
        return model_output[..., self.category] + log_probs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.category})"


class FinerWeightedTarget:
    """Finer-CAM (Zhang et al. 2025) as pytorch-grad-cam 1.5.7 defines it:

    Σ_j p_j (y_c − α·y_j) / (Σ_j p_j + 1e-9) over the comparison classes j, p = softmax(y).
    (torchcam's FinerCAM differs: γ = 0.6 and an unweighted mean.)
    """

    def __init__(self, main_category: int, comparison_categories: Sequence[int], alpha: float = 1.0) -> None:
        if not comparison_categories:
            raise TargetError("FinerWeightedTarget needs at least one comparison category")
        self.category = int(main_category)
        self.comparison_categories = [int(c) for c in comparison_categories]
        self.alpha = float(alpha)

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(model_output, dim=-1)
        main = model_output[..., self.category]
        others = self.comparison_categories
        weights = probs[..., others]
        numerator = (weights * (main[..., None] - self.alpha * model_output[..., others])).sum(dim=-1)
        return numerator / (weights.sum(dim=-1) + 1e-9)

    def __repr__(self) -> str:
        return f"FinerWeightedTarget({self.category}, {self.comparison_categories}, alpha={self.alpha})"


# ---------------------------------------------------------------------------- pytorch-grad-cam's other targets
class BinaryClassifierOutputTarget:
    """A one-logit binary classifier: the logit for ``category`` 1, its negative for 0."""

    category_is_class = False  # ``category`` is the label (0 or 1), not an output index

    def __init__(self, category: int) -> None:
        self.category = category

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return model_output * (1 if self.category == 1 else -1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.category})"


class SoftmaxOutputTarget:
    """Every class's softmax probability (a vector: for metrics that score all classes, not for a CAM)."""

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model_output, dim=-1)


class RawScoresOutputTarget:
    """The raw output itself (a vector: for metrics that score all classes, not for a CAM)."""

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        return model_output
