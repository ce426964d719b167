"""Attention-based methods for token models: CLS attention, attention rollout, gradient rollout.

They read the post-softmax attention matrices that :class:`camscope.methods.attention_capture.AttentionCapture`
records (class-attention blocks for CaiT / XCiT) and return maps with the CAM call shape and output:
``method(input_tensor, targets)`` → float32 (N, H, W) in [0, 1], bilinearly upsampled with half-pixel
centres and min-max scaled per image, exactly as the CAMs (:meth:`BaseCAM.combine_layers`).

Notation: A_l (heads, T, T) is block l's attention of one image, c the class rows (CLS; CLS and
distillation token for distilled DeiT, whose prediction averages both heads: their rows are averaged),
p the patch columns (after ``num_prefix_tokens``). A class-attention block's matrix has only the CLS
row; it is embedded in T×T with zero rows elsewhere — the patch tokens do not change in those blocks,
so rollout gives them identity rows and gradient rollout no update.

Only the class rows of the products are needed, so they are computed as vectors from the left,
e_cᵀ·M_L⋯M_1: O(T²) per block instead of O(T³).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import nn

from camscope.core.capture import LayerCapture, ReshapeTransform, eval_mode, resolve_layers
from camscope.core.errors import InputError, LayerError
from camscope.core.outputs import Outputs
from camscope.core.targets import TargetSpec, model_logits, resolve_targets, target_scores
from camscope.methods.attention_capture import (
    AttentionCapture,
    AttentionLayer,
    attention_layers,
    patch_grid,
    token_layout,
)
from camscope.methods.base import BaseCAM, CamState
from camscope.methods.registry import register_method

HeadFusion = Literal["mean", "max", "min"]
_FUSIONS = ("mean", "max", "min")


def fuse_heads(attn: torch.Tensor, head_fusion: str) -> torch.Tensor:
    """(N, heads, …) → (N, …) by the mean, max or min over heads."""
    if head_fusion == "mean":
        return attn.mean(dim=1)
    if head_fusion == "max":
        return attn.amax(dim=1)
    return attn.amin(dim=1)


def _precise(tensor: torch.Tensor) -> torch.Tensor:
    """Half precision is computed on in float32; float32 and float64 stay as they are."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def _full(attn: torch.Tensor) -> torch.Tensor:
    """A class-attention matrix (N, 1, T) as (N, T, T) with zero rows but the first; (N, T, T) unchanged."""
    if attn.shape[-2] == attn.shape[-1]:
        return attn
    full = attn.new_zeros(attn.shape[0], attn.shape[-1], attn.shape[-1])
    full[:, :1] = attn
    return full


class AttentionMethod(BaseCAM):
    """Base of the methods that read attention matrices instead of a layer's activations.

    Args:
        model: a timm token model with a class token (ViT, DeiT, CaiT, XCiT, …); Swin or a CNN raises
            :class:`camscope.methods.attention_capture.AttentionUnavailableError`.
        target_layers: the blocks (or their attention modules, or any module inside a block) to read;
            default: every attention block with a class row (the last one for :class:`AttentionMap`).
        reshape_transform: unused — the patch grid comes from the model and the input size.
        head_fusion: how heads are combined: ``"mean"`` (default), ``"max"`` or ``"min"``.
    """

    uses_gradients = False
    takes_layers = False
    reads_attention = True
    params: ClassVar[tuple[str, ...]] = ("head_fusion",)
    default_last_only: ClassVar[bool] = False

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str | None = None,
        reshape_transform: ReshapeTransform | None = None,
        head_fusion: HeadFusion = "mean",
    ) -> None:
        if head_fusion not in _FUSIONS:
            raise InputError(f"head_fusion must be one of {', '.join(_FUSIONS)}, got {head_fusion!r}")
        self.model = model
        self.head_fusion = head_fusion
        self.reshape_transform = reshape_transform
        self.outputs: Outputs | None = None
        available = attention_layers(model)
        if target_layers is None:
            self.attention = available[-1:] if self.default_last_only else available
        else:
            self.attention = [_attention_of(model, layer, available) for layer in resolve_layers(model, target_layers)]
        self.target_layers = [layer.module for layer in self.attention]
        self.layout = token_layout(model)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layers={[layer.name for layer in self.attention]})"

    # ------------------------------------------------------------------ what subclasses implement
    def token_map(
        self, state: CamState, attentions: list[torch.Tensor], grads: list[torch.Tensor] | None
    ) -> torch.Tensor:
        """Relevance of each patch token, (N, patches), from the captured matrices (and their gradients)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the engine
    def _capture(
        self, x: torch.Tensor, targets: TargetSpec
    ) -> tuple[CamState, list[torch.Tensor], list[torch.Tensor] | None]:
        with AttentionCapture(self.model, self.attention, need_grad=self.uses_gradients) as capture:
            if not self.uses_gradients:
                with torch.inference_mode():
                    logits = model_logits(capture.forward(x))
                    state = CamState(x, logits, resolve_targets(targets, logits))
                return state, [_precise(a) for a in capture.recorded()], None
            with torch.enable_grad():
                logits = model_logits(capture.forward(x))
                resolved = resolve_targets(targets, logits.detach())
                attentions = capture.recorded()
                score = target_scores(resolved, logits).sum()
                raw = torch.autograd.grad(score, attentions, allow_unused=True) if score.requires_grad else None
            grads = [
                _precise(g) if g is not None else _precise(torch.zeros_like(a))
                for g, a in zip(raw or [None] * len(attentions), attentions)
            ]
            state = CamState(x, logits.detach(), resolved)
            return state, [_precise(a.detach()) for a in attentions], grads

    def patch_maps(self, x: torch.Tensor, targets: TargetSpec) -> tuple[CamState, torch.Tensor]:
        """The low-resolution patch maps (N, h, w) before upsampling and scaling."""
        with eval_mode(self.model), torch.inference_mode(False):
            state, attentions, grads = self._capture(x, targets)
        self.outputs = state.logits
        relevance = self.token_map(state, attentions, grads)
        grid = patch_grid(self.model, relevance.shape[1], state.size)
        return state, relevance.reshape(relevance.shape[0], *grid)

    def _maps(self, x: torch.Tensor, targets: TargetSpec, eigen_smooth: bool) -> torch.Tensor:
        if eigen_smooth:
            raise InputError(f"eigen_smooth does not apply to {type(self).__name__} (it has no channels)")
        state, maps = self.patch_maps(x, targets)
        return self.combine_layers(state, [maps])

    def class_rows(self, relevance: torch.Tensor) -> torch.Tensor:
        """(N, k, T) rows of the class tokens → (N, patches): their mean over the patch columns."""
        return relevance[:, :, self.layout.num_prefix_tokens :].mean(dim=1)

    def _start(self, attentions: list[torch.Tensor]) -> torch.Tensor:
        """e_c for each class row, (N, k, T)."""
        n, t = attentions[0].shape[0], attentions[0].shape[-1]
        rows = self.layout.class_rows if attentions[0].shape[-2] == t else (0,)
        start = attentions[0].new_zeros(n, len(rows), t)
        for i, row in enumerate(rows):
            start[:, i, row] = 1.0
        return start


def _attention_of(model: nn.Module, layer: nn.Module, available: list[AttentionLayer]) -> AttentionLayer:
    """The attention layer a target layer designates: itself, the one inside it, or the block around it."""
    for candidate in available:
        inside = any(m is candidate.module for m in layer.modules())
        around = any(m is layer for m in candidate.module.modules())
        if inside or around:
            return candidate
    for candidate in available:  # a module elsewhere in the block that holds the attention (e.g. norm1)
        block_name = candidate.name.rsplit(".", 1)[0]
        block = model.get_submodule(block_name)
        if any(m is layer for m in block.modules()):
            return candidate
    names = ", ".join(layer.name.rsplit(".", 1)[0] for layer in available)
    raise LayerError(f"{type(layer).__name__} is not in an attention block with a class row; blocks: {names}")


@register_method("attention", "attentionmap", "cls-attention")
class AttentionMap(AttentionMethod):
    """CLS attention of one block (DINO, Caron et al. 2021, ``visualize_attention.py``).

    map = fuse_h(A_L[h, c, p]) (or head ``head`` alone), averaged over the class rows c; class-agnostic
    (targets are ignored). ``threshold`` gives DINO's mask instead: per image, the patches that together
    hold ``threshold`` of the attention mass (sorted ascending, cumulative share > 1 − threshold) are 1,
    the rest 0. Default block: the last one (``target_layers`` picks another).
    """

    default_last_only = True
    params = ("head_fusion", "head", "threshold")

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str | None = None,
        reshape_transform: ReshapeTransform | None = None,
        head_fusion: HeadFusion = "mean",
        head: int | None = None,
        threshold: float | None = None,
    ) -> None:
        super().__init__(model, target_layers, reshape_transform, head_fusion)
        if len(self.attention) != 1:
            raise LayerError(f"AttentionMap reads one block, got {len(self.attention)} target layers")
        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise InputError(f"threshold must be in (0, 1], got {threshold}")
        self.head = head
        self.threshold = threshold

    def head_rows(self, attentions: list[torch.Tensor]) -> torch.Tensor:
        """(N, heads, patches): each head's class-row attention over the patches."""
        attn = attentions[-1]
        if self.head is not None and not -attn.shape[1] <= self.head < attn.shape[1]:
            raise InputError(f"head {self.head} is out of range: the block has {attn.shape[1]} heads")
        rows = self.layout.class_rows if attn.shape[-2] == attn.shape[-1] else (0,)
        return attn[:, :, list(rows), self.layout.num_prefix_tokens :].mean(dim=2)

    def token_map(
        self, state: CamState, attentions: list[torch.Tensor], grads: list[torch.Tensor] | None
    ) -> torch.Tensor:
        per_head = self.head_rows(attentions)
        relevance = per_head[:, self.head] if self.head is not None else fuse_heads(per_head, self.head_fusion)
        if self.threshold is not None:
            relevance = mass_mask(relevance, self.threshold)
        return relevance

    def all_heads(self, input_tensor: torch.Tensor) -> np.ndarray:
        """Every head's map at once, float32 (N, heads, H, W), each upsampled and min-max scaled per image."""
        x = self._check_input(input_tensor)
        with eval_mode(self.model), torch.inference_mode(False):
            state, attentions, _ = self._capture(x, None)
        self.outputs = state.logits
        per_head = self.head_rows(attentions)
        if self.threshold is not None:
            per_head = mass_mask(per_head.flatten(0, 1), self.threshold).view_as(per_head)
        n, heads, patches = per_head.shape
        grid = patch_grid(self.model, patches, state.size)
        maps = self.combine_layers(state, [per_head.reshape(n * heads, *grid)])
        return maps.view(n, heads, *state.size).float().cpu().numpy()


def mass_mask(relevance: torch.Tensor, threshold: float) -> torch.Tensor:
    """DINO's mask, (N, P) → (N, P) in {0, 1}: the largest entries holding ``threshold`` of each row's mass."""
    values, order = relevance.sort(dim=1)
    share = values / values.sum(dim=1, keepdim=True)
    keep = (share.cumsum(dim=1) > 1 - threshold).to(relevance.dtype)
    return torch.empty_like(keep).scatter_(1, order, keep)


@register_method("rollout", "attentionrollout", "attention-rollout")
class AttentionRollout(AttentionMethod):
    """Attention rollout (Abnar & Zuidema, ACL 2020):

    Â_l = rownorm(0.5·fuse_h(A_l) + 0.5·I),  R = Â_L ⋯ Â_1,  map = R[c, p].

    ``discard_ratio`` (default 0, the paper's method) zeroes, per image and block, that fraction of the
    smallest entries of fuse_h(A_l) before adding I (never entry [0, 0]); vit-explain's 0.9 is an option.
    Class-agnostic: the targets are ignored.
    """

    params = ("head_fusion", "discard_ratio")

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str | None = None,
        reshape_transform: ReshapeTransform | None = None,
        head_fusion: HeadFusion = "mean",
        discard_ratio: float = 0.0,
    ) -> None:
        super().__init__(model, target_layers, reshape_transform, head_fusion)
        if not 0.0 <= discard_ratio < 1.0:
            raise InputError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
        self.discard_ratio = discard_ratio

    def token_map(
        self, state: CamState, attentions: list[torch.Tensor], grads: list[torch.Tensor] | None
    ) -> torch.Tensor:
        rows = self._start(attentions)
        for attn in reversed(attentions):
            fused = fuse_heads(attn, self.head_fusion)  # (N, q, T), q = T or 1 (class attention)
            if self.discard_ratio > 0:
                fused = discard_smallest(fused, self.discard_ratio)
            fused = _full(fused)
            eye = torch.eye(fused.shape[-1], device=fused.device, dtype=fused.dtype)
            step = 0.5 * fused + 0.5 * eye
            step = step / step.sum(dim=-1, keepdim=True)
            rows = rows @ step
        return self.class_rows(rows)


def discard_smallest(fused: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero the ``ratio`` share of each image's smallest entries, never the flat entry 0 ([CLS, CLS])."""
    flat = fused.flatten(1).clone()
    count = int(flat.shape[1] * ratio)
    if count == 0:
        return fused
    protected = flat.clone()
    protected[:, 0] = torch.inf
    _, smallest = protected.topk(count, dim=1, largest=False)
    flat.scatter_(1, smallest, 0.0)
    return flat.view_as(fused)


@register_method("gradrollout", "gradientrollout", "chefer", "generic-attention")
class GradientRollout(AttentionMethod):
    """Generic attention explainability (Chefer, Gur & Wolf, ICCV 2021), gradient-weighted rollout:

    R = I;  for each block l:  Ā_l = E_h[(∇A_l ⊙ A_l)⁺],  R ← R + Ā_l·R;  map = R[c, p],

    with ∇A_l = ∂(target score)/∂A_l; E_h is the mean over heads (the paper), or ``head_fusion``'s max / min.
    Class-specific; the whole batch in one backward pass (the reference loops over samples).
    """

    uses_gradients = True

    def token_map(
        self, state: CamState, attentions: list[torch.Tensor], grads: list[torch.Tensor] | None
    ) -> torch.Tensor:
        assert grads is not None
        rows = self._start(attentions)
        for attn, grad in zip(reversed(attentions), reversed(grads)):
            weighted = _full(fuse_heads((grad * attn).clamp(min=0), self.head_fusion))
            rows = rows + rows @ weighted
        return self.class_rows(rows)


def default_score_projection(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """LeGrad's per-layer class scores s^l = head(norm(mean over tokens of z^l)) with the model's own final
    norm(s) and classifier: timm ViT/DeiT (``norm``, ``fc_norm``, ``head``; distilled DeiT averages
    ``head`` and ``head_dist`` as its forward does) or torchvision's ViT (``encoder.ln``, ``heads``)."""
    encoder_ln = getattr(getattr(model, "encoder", None), "ln", None)
    heads = getattr(model, "heads", None)
    if isinstance(encoder_ln, nn.Module) and isinstance(heads, nn.Module):
        return lambda tokens: torch.as_tensor(heads(encoder_ln(tokens.mean(dim=1))))
    norm = getattr(model, "norm", None)
    head = getattr(model, "head", None)
    if not isinstance(norm, nn.Module) or not isinstance(head, nn.Module):
        raise LayerError(f"LeGrad needs a final norm and head on {type(model).__name__}: pass score_projection=")
    fc_norm = getattr(model, "fc_norm", None)
    head_dist = getattr(model, "head_dist", None)

    def project(tokens: torch.Tensor) -> torch.Tensor:
        pooled = norm(tokens.mean(dim=1))
        if isinstance(fc_norm, nn.Module):
            pooled = fc_norm(pooled)
        logits = head(pooled)
        if isinstance(head_dist, nn.Module):
            logits = (logits + head_dist(pooled)) / 2
        return torch.as_tensor(logits)

    return project


@register_method("legrad")
class LeGrad(AttentionMethod):
    """LeGrad (Bousselham et al., 2024): the sensitivity of each block's own class score to its attention.

    For each block l: s^l = head(norm(mean_t z^l_t)) on the block's output tokens z^l (``score_projection``),
    E^l = mean over heads and queries of ReLU(∂s_c^l / ∂A^l), prefix keys dropped; map = mean_l E^l.
    Same numbers as torchcam 0.5.0's ``LeGrad`` (which runs on torchvision ViTs only). Self-attention
    blocks only (CaiT's and XCiT's class-attention blocks hold no per-layer token sequence to score).
    """

    uses_gradients = True
    params = ("score_projection",)

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str | None = None,
        reshape_transform: ReshapeTransform | None = None,
        score_projection: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(model, target_layers, reshape_transform)
        if any(layer.kind != "self" for layer in self.attention):
            raise LayerError(
                f"LeGrad needs self-attention blocks; {type(model).__name__} has class-attention blocks "
                "(use gradrollout, rollout or attention)"
            )
        self.score_projection = score_projection or default_score_projection(model)
        self.blocks = [model.get_submodule(layer.name.rsplit(".", 1)[0]) for layer in self.attention]

    def _capture(
        self, x: torch.Tensor, targets: TargetSpec
    ) -> tuple[CamState, list[torch.Tensor], list[torch.Tensor] | None]:
        with (
            AttentionCapture(self.model, self.attention, need_grad=True) as capture,
            LayerCapture(self.model, self.blocks, need_grad=True) as blocks,
            torch.enable_grad(),
        ):
            logits = model_logits(blocks.forward(x))
            resolved = resolve_targets(targets, logits.detach())
            attentions = capture.recorded()
            grads = []
            for index, (tokens, attn) in enumerate(zip(blocks.recorded(), attentions)):
                score = target_scores(resolved, self.score_projection(tokens)).sum()
                last = index == len(attentions) - 1
                grad = torch.autograd.grad(score, attn, retain_graph=not last, allow_unused=True)[0]
                grads.append(_precise(grad) if grad is not None else _precise(torch.zeros_like(attn)))
        return CamState(x, logits.detach(), resolved), [_precise(a.detach()) for a in attentions], grads

    def token_map(
        self, state: CamState, attentions: list[torch.Tensor], grads: list[torch.Tensor] | None
    ) -> torch.Tensor:
        assert grads is not None
        per_layer = [g.clamp(min=0).mean(dim=(1, 2))[:, self.layout.num_prefix_tokens :] for g in grads]
        return torch.stack(per_layer).mean(dim=0)
