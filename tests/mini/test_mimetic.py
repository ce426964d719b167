"""Mimetic attention initialisation: the structure the paper prescribes, and what it does to attention."""

from __future__ import annotations

import pytest
import torch
from timm.models.vision_transformer import Attention

from camscope.core.errors import InputError
from camscope.models import mini_archs as backbones
from camscope_lab.mimetic import QK, VO, mimetic_init


def _products(attn: Attention) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per head, the bilinear form of the attention logits (x Mₕ xᵀ); over heads, x ↦ x W_v W_o."""
    q, k, v = attn.qkv.weight.detach().chunk(3)
    width = q.shape[0] // attn.num_heads
    heads = [q[h * width : (h + 1) * width].T @ k[h * width : (h + 1) * width] for h in range(attn.num_heads)]
    return heads, v.T @ attn.proj.weight.detach().T


def test_one_head_gets_the_papers_products():
    """One full-width head: M = α₁Z + β₁I and W_v W_o = α₂Z − β₂I, Z with N(0, 1/d) entries."""
    torch.manual_seed(0)
    dim = 256
    attn = Attention(dim, num_heads=1)
    assert mimetic_init(attn) == 1
    (qk,), vo = _products(attn)
    off = ~torch.eye(dim, dtype=torch.bool)
    for product, (alpha, beta) in ((qk, QK), (vo, (VO[0], -VO[1]))):
        assert product.diagonal().mean() == pytest.approx(beta, abs=0.02)
        assert product[off].mean() == pytest.approx(0.0, abs=0.005)
        assert product[off].std() == pytest.approx(alpha / dim**0.5, rel=0.05)


def test_narrow_heads_get_low_rank_self_similar_forms():
    """Heads narrower than the model: each form has the head's rank, and its mean self-similarity (trace /
    width) is above β₁, as the largest singular directions of α₁Z + β₁I are the ones kept."""
    torch.manual_seed(0)
    dim, heads = 192, 3
    attn = Attention(dim, num_heads=heads)
    mimetic_init(attn)
    per_head, _ = _products(attn)
    width = dim // heads
    for form in per_head:
        assert torch.linalg.matrix_rank(form) == width
        assert QK[1] < form.trace() / width < QK[1] + 2 * QK[0]


def _self_attention(model: torch.nn.Module) -> float:
    """Mean attention a token of the first block pays to itself, on one random image."""
    torch.manual_seed(1)
    x = model.patch_embed(torch.randn(1, 3, 64, 64))
    x = model.norm_pre(model._pos_embed(x))
    attn = model.blocks[0].attn
    q, k, _ = attn.qkv(model.blocks[0].norm1(x)).reshape(1, -1, 3, attn.num_heads, attn.head_dim).unbind(2)
    weights = torch.einsum("bihd,bjhd->bhij", q, k).mul(attn.scale).softmax(-1)
    return float(weights.diagonal(dim1=-2, dim2=-1).mean())


def test_mimetic_attention_starts_structured_on_the_mini_vit():
    """timm's init attends almost uniformly (1/65 per token); mimetic attention favours the token itself."""
    torch.manual_seed(0)
    timm_init = backbones.build("vit")
    mimetic = backbones.build("vit")
    mimetic_init(mimetic)
    tokens = 1 + (64 // 8) ** 2
    with torch.no_grad():
        assert _self_attention(timm_init) < 2 / tokens
        assert _self_attention(mimetic) > 10 / tokens


@pytest.mark.parametrize("arch, expected", [("vit", 6), ("cait", 6), ("swin", 6), ("xcit", 1)])
def test_every_token_attention_of_the_minis_is_initialised(arch, expected):
    """XCiT: only its class attention (its cross-covariance attention mixes channels, not tokens)."""
    assert mimetic_init(backbones.build(arch)) == expected


def test_a_model_without_token_attention_is_an_error():
    with pytest.raises(InputError, match="needs softmax attention"):
        mimetic_init(backbones.build("resnet"))


def test_a_token_attention_of_another_layout_is_an_error_not_a_partial_init():
    attn = Attention(16, num_heads=2)
    attn.proj = torch.nn.Linear(16, 8)
    with pytest.raises(InputError, match="needs d×d projections"):
        mimetic_init(torch.nn.Sequential(attn))
