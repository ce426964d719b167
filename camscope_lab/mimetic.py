"""Mimetic initialisation of self-attention (Trockman & Kolter, ICML 2023): an experiment option for token minis.

Why: a ViT trained from scratch on little data spends its first hundreds of steps at chance (the
plateau in ``benchmarks/results/mini_recipes.md``) while its attention is still uniform. Pre-trained
ViTs show two structures the paper copies into the initial weights, with no change to the architecture:

* per head, ``W_q W_kᵀ ≈ α₁ Z + β₁ I`` — a token attends to tokens like itself (itself and, through the
  position embeddings, its neighbours), so attention starts structured rather than uniform;
* over all heads, ``W_v W_o ≈ α₂ Z − β₂ I`` — the attention branch starts close to subtracting what it
  attends to.

``Z`` has i.i.d. N(0, 1/d) entries (a fresh draw per head and per block). Each product is factorised
through its SVD, ``A = U S Vᵀ``: the left factor ``U √S`` and the right ``√S Vᵀ``, truncated to the
head's width for ``W_q``/``W_k`` (the best rank-``head_dim`` approximation of ``A``).

Draws from torch's global generator, like timm's own initialisation, so a seeded run repeats.

Measured (``benchmarks/results/mini_recipes.md``): on the conv-stem mini ViT, at the paper's
values, training stayed at chance for all 900 steps of a run in which timm's initialisation left chance
by step 450. A fresh token there gives 42 % of its first-block attention to itself (timm's init: 1.5 %,
uniform 1/65); with tokens from a conv stem, self-similarity may be the wrong start (not measured further).
An experiment option of ``camscope_lab/experiments/mini_recipes.py``, in no recipe.
"""

from __future__ import annotations

import torch
from torch import nn

from camscope.core.errors import InputError


def _token_attentions() -> tuple[type[nn.Module], ...]:
    """timm's softmax attentions over tokens: ViT (DeiT), CaiT (talking heads, class attention), Swin windows.

    XCiT's cross-covariance attention shares their parameter names but attends across channels, where the
    paper's structure means something else, so it is not in the list (XCiT's class attention is CaiT's).
    """
    from timm.models.cait import ClassAttn, TalkingHeadAttn
    from timm.models.swin_transformer import WindowAttention
    from timm.models.vision_transformer import Attention  # type: ignore[attr-defined]

    return Attention, TalkingHeadAttn, ClassAttn, WindowAttention


ATTENTION_INITS = ("mimetic",)  # camscope_lab/experiments/mini_recipes.py --attention-init
QK = (0.7, 0.7)  # (α₁, β₁): the paper's values for small ViTs
VO = (0.4, 0.4)  # (α₂, β₂)


def _factors(dim: int, alpha: float, beta: float, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L, R)`` with ``L R`` the best rank-``rank`` approximation of ``α Z + β I`` (``L``: d×rank)."""
    target = alpha * torch.randn(dim, dim) / dim**0.5 + beta * torch.eye(dim)
    u, s, vh = torch.linalg.svd(target)
    root = s[:rank].sqrt()
    return u[:, :rank] * root, root[:, None] * vh[:rank]


def _projections(attn: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The (out, in) weights of the query, key and value projections, as views to write into."""
    layers = {name: getattr(attn, name, None) for name in ("qkv", "q", "k", "v")}
    fused = layers["qkv"]
    if isinstance(fused, nn.Linear):
        wq, wk, wv = fused.weight.chunk(3, dim=0)
        return wq, wk, wv
    q, k, v = layers["q"], layers["k"], layers["v"]
    if isinstance(q, nn.Linear) and isinstance(k, nn.Linear) and isinstance(v, nn.Linear):
        return q.weight, k.weight, v.weight
    return None


@torch.no_grad()
def mimetic_init(model: nn.Module, qk: tuple[float, float] = QK, vo: tuple[float, float] = VO) -> int:
    """Overwrite the query, key, value and output projections of every softmax attention in ``model``.

    Applies to the attentions of :func:`_token_attentions` (``num_heads``, ``qkv`` or ``q``/``k``/``v``
    projections and a ``proj`` output, all of one width). Biases are left as initialised (timm: zero).
    Returns how many attention modules it changed; a model with none (a CNN) is an error, not a
    silent no-op.
    """
    kinds = _token_attentions()
    changed = 0
    for name, attn in model.named_modules():
        if not isinstance(attn, kinds):
            continue
        weights, proj, heads = _projections(attn), getattr(attn, "proj", None), getattr(attn, "num_heads", None)
        if weights is None or not isinstance(proj, nn.Linear) or not isinstance(heads, int):
            raise InputError(f"mimetic initialisation: {name} ({type(attn).__name__}) has no q/k/v, proj or num_heads")
        wq, wk, wv = weights
        dim = wq.shape[1]
        if {wq.shape, wk.shape, wv.shape, proj.weight.shape} != {(dim, dim)} or dim % heads:
            # a listed kind laid out otherwise: an error, not a model initialised in part
            raise InputError(f"mimetic initialisation: {name} needs d×d projections and d divisible by its heads")
        width = dim // heads
        for h in range(heads):
            rows = slice(h * width, (h + 1) * width)
            left, right = _factors(dim, *qk, rank=width)
            wq[rows] = left.T  # q_h = x @ left, k_h = x @ right.T: q_h k_hᵀ = x (left right) xᵀ
            wk[rows] = right
        left, right = _factors(dim, vo[0], -vo[1], rank=dim)
        wv.copy_(left.T)  # v = x @ left, out = v @ right: x (left right)
        proj.weight.copy_(right.T)
        changed += 1
    if not changed:
        raise InputError(f"mimetic initialisation needs softmax attention blocks; {type(model).__name__} has none")
    return changed
