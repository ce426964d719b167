"""Attention capture on timm token models: the matrices, an unchanged output, and a model left as it was."""

from __future__ import annotations

import pytest
import timm
import torch

import camscope
from camscope.cli import main
from camscope.core.errors import LayerError
from camscope.methods.attention_capture import (
    AttentionCapture,
    AttentionUnavailableError,
    TokenLayout,
    attention_layers,
    token_layout,
)
from tests.methods.token_models import TOKEN_MODELS, build_token_model, token_input


@pytest.fixture(scope="module", params=list(TOKEN_MODELS))
def model32(request):
    """float32 and fused attention on (timm's default), as users run them."""
    model = build_token_model(request.param, dtype=torch.float32)
    return request.param, model


def test_logits_unchanged_and_matrices_are_softmax_rows(model32) -> None:
    key, model = model32
    x = token_input(dtype=torch.float32)
    with torch.no_grad():
        plain = model(x)
    for which in ("class", "all"):
        layers = attention_layers(model, which)
        with AttentionCapture(model, layers) as capture, torch.no_grad():
            captured = capture.forward(x)
        assert (captured - plain).abs().max() <= 1e-5
        for layer, attn in zip(layers, capture.maps):
            assert attn is not None and attn.shape[:2] == (2, layer.module.num_heads)
            if layer.kind in ("self", "class"):  # talking heads mix after the softmax; XCA is channel attention
                torch.testing.assert_close(attn.sum(-1), torch.ones_like(attn.sum(-1)))
    prefix = model.num_prefix_tokens
    layers = attention_layers(model)
    with AttentionCapture(model, layers) as capture, torch.no_grad():
        capture.forward(x)
    tokens = prefix + 16
    expected = (2, 3, 1, 1 + 16) if key in ("cait", "xcit") else (2, 3, tokens, tokens)
    assert all(tuple(m.shape) == expected for m in capture.recorded())
    assert [layer.kind for layer in layers] == ["class" if key in ("cait", "xcit") else "self"] * 2


def test_layout_comes_from_the_model() -> None:
    assert token_layout(build_token_model("vit")) == TokenLayout(1, (0,))
    assert token_layout(build_token_model("deit_distilled")) == TokenLayout(2, (0, 1))
    reg = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=1, reg_tokens=4)
    assert token_layout(reg) == TokenLayout(5, (0,))
    assert camscope.AttentionRollout(reg)(torch.randn(2, 3, 32, 32)).shape == (2, 32, 32)


@pytest.mark.parametrize("method", ["attention", "rollout", "gradrollout", "legrad"])
def test_model_is_restored(model32, method) -> None:
    key, model = model32
    if method == "legrad" and key in ("cait", "xcit"):  # class-attention blocks: refused before any hook
        with pytest.raises(LayerError, match="class-attention"):
            camscope.LeGrad(model)
        return
    model.train()
    model.blocks[0].eval()  # a mixed state, restored module by module
    modes = {name: m.training for name, m in model.named_modules()}
    flags = {name: m.fused_attn for name, m in model.named_modules() if hasattr(m, "fused_attn")}
    grads = {name: p.requires_grad for name, p in model.named_parameters()}
    camscope.get_method(method)(model)(token_input(dtype=torch.float32), [1, 2])
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert {name: m.fused_attn for name, m in model.named_modules() if hasattr(m, "fused_attn")} == flags
    assert {name: p.requires_grad for name, p in model.named_parameters()} == grads
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    model.eval()


def test_hooks_and_flags_restored_when_the_forward_raises() -> None:
    model = build_token_model("vit", dtype=torch.float32)
    with pytest.raises(RuntimeError), AttentionCapture(model, attention_layers(model)) as capture:
        capture.forward(torch.randn(2, 5, 32, 32))  # wrong channel count
    assert all(m.fused_attn for m in model.modules() if hasattr(m, "fused_attn"))
    assert all(not m._forward_hooks for m in model.modules())


def test_frozen_model_still_gives_gradients() -> None:
    model = build_token_model("vit", dtype=torch.float32)
    for p in model.parameters():
        p.requires_grad_(False)
    maps = camscope.GradientRollout(model)(token_input(dtype=torch.float32), [1, 2])
    assert maps.max() > 0.5
    assert not any(p.requires_grad for p in model.parameters())


def test_swin_and_cnn_name_the_methods_that_work() -> None:
    swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, depths=(1, 1, 1, 1), embed_dim=24)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    for model in (swin, cnn):
        with pytest.raises(AttentionUnavailableError, match="gradcam"):
            camscope.AttentionRollout(model)
    no_cls = timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        img_size=32,
        patch_size=8,
        depth=1,
        class_token=False,
        global_pool="avg",
    )
    with pytest.raises(AttentionUnavailableError, match="no class token"):
        camscope.GradientRollout(no_cls)


@pytest.mark.parametrize("model", ["mini_swin", "mini_resnet"])
def test_cli_attention_method_on_swin_or_cnn_exits_2(model, tmp_path, capsys) -> None:
    code = main(["explain", "--synthetic", "1", "--model", model, "--method", "rollout", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "gradcam" in err and "Traceback" not in err


def test_explain_uses_every_block_for_rollout(tmp_path) -> None:
    result = camscope.explain("mini_deit", _scene(), method="rollout")
    model = camscope.load_model("mini_deit")
    assert result.layers == [f"blocks.{i}.attn" for i in range(len(model.blocks))]
    assert result.map.shape == (64, 64) and result.map.max() == pytest.approx(1.0, abs=1e-6)


def _scene():
    from camscope.data import generate

    return generate(1, seed=0).images[0]
