"""Attention methods against oracles written here from the papers' formulas.

The oracles get the attention matrices their own way — recomputed from each attention module's input
and its q/k projections (fused attention left on), gradients through ``Tensor.register_hook`` and
``backward`` one image at a time — and multiply full T×T matrices per image in float64. Nothing is
shared with camscope's implementation but the final bilinear upsampling (half-pixel centres) and
min-max scaling, which the CAM parity tests pin down.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import camscope
from tests.methods.token_models import TOKEN_MODELS, build_token_model, token_input

TOL = 1e-5
GRID = 4  # 32 px input, 8 px patches


@pytest.fixture(scope="module", params=list(TOKEN_MODELS))
def token_model(request):
    return request.param, build_token_model(request.param)


# ---------------------------------------------------------------------------- oracle helpers
def recompute_attention(model, x: torch.Tensor) -> list[torch.Tensor]:
    """Per attention block read by the methods: (N, heads, rows, T) softmax(q kᵀ·scale), recomputed."""
    class_blocks = getattr(model, "blocks_token_only", None) or getattr(model, "cls_attn_blocks", None)
    blocks = class_blocks if class_blocks is not None else model.blocks
    inputs = []
    handles = [b.attn.register_forward_pre_hook(lambda m, args: inputs.append(args[0])) for b in blocks]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    out = []
    for block, u in zip(blocks, [u.detach() for u in inputs]):
        attn = block.attn
        n, t, c = u.shape
        heads = attn.num_heads
        d = c // heads
        if class_blocks is not None:
            q = attn.q(u[:, :1]).reshape(n, 1, heads, d).transpose(1, 2)
            k = attn.k(u).reshape(n, t, heads, d).transpose(1, 2)
        else:
            qkv = attn.qkv(u).reshape(n, t, 3, heads, d).permute(2, 0, 3, 1, 4)
            q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])
        with torch.no_grad():
            out.append(torch.softmax((q.double() * d**-0.5) @ k.double().transpose(-2, -1), dim=-1))
    return out


def attention_with_grads(model, x: torch.Tensor, target: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One image: attention matrices and d(logit[target])/d(attention) via tensor hooks and backward()."""
    class_blocks = getattr(model, "blocks_token_only", None) or getattr(model, "cls_attn_blocks", None)
    blocks = class_blocks if class_blocks is not None else model.blocks
    attns, grads = [], {}

    def keep(module, inputs, output):
        index = len(attns)
        attns.append(output)
        output.register_hook(lambda g: grads.__setitem__(index, g))

    saved = [b.attn.fused_attn for b in blocks]
    for b in blocks:
        b.attn.fused_attn = False
    handles = [b.attn.attn_drop.register_forward_hook(keep) for b in blocks]
    try:
        model(x)[0, target].backward()
    finally:
        for h in handles:
            h.remove()
        for b, flag in zip(blocks, saved):
            b.attn.fused_attn = flag
        model.zero_grad(set_to_none=True)
    return [a.detach().double()[0] for a in attns], [grads[i].double()[0] for i in range(len(attns))]


def as_full(a: torch.Tensor) -> torch.Tensor:
    """(rows, T) → (T, T): a class-attention row in row 0, zero rows elsewhere."""
    full = torch.zeros(a.shape[-1], a.shape[-1], dtype=a.dtype)
    full[: a.shape[0]] = a
    return full


def prefix_and_rows(model) -> tuple[int, list[int]]:
    prefix = model.num_prefix_tokens
    if getattr(model, "blocks_token_only", None) is not None or getattr(model, "cls_attn_blocks", None) is not None:
        return 1, [0]
    return prefix, [0, 1] if getattr(model, "dist_token", None) is not None else [0]


def minmax(m: np.ndarray) -> np.ndarray:
    m = m - m.min()
    return m / (m.max() + 1e-7)


def finish(patch_relevance: np.ndarray) -> np.ndarray:
    """(P,) → (32, 32) as the CAMs do it: ReLU, min-max, bilinear upsampling (half-pixel centres), min-max."""
    m = minmax(np.maximum(np.asarray(patch_relevance, dtype=np.float64).reshape(GRID, GRID), 0))
    m = F.interpolate(torch.as_tensor(m)[None, None], size=(32, 32), mode="bilinear", align_corners=False)
    return minmax(m[0, 0].numpy())


def oracle_rollout(model, x, head_fusion="mean", discard_ratio=0.0) -> np.ndarray:
    prefix, rows = prefix_and_rows(model)
    attentions = recompute_attention(model, x)
    maps = []
    for i in range(x.shape[0]):
        t = attentions[0].shape[-1]
        result = np.eye(t)
        for attn in attentions:
            a = attn[i].numpy()  # (heads, rows, T)
            fused = {"mean": a.mean(0), "max": a.max(0), "min": a.min(0)}[head_fusion]
            if discard_ratio:
                flat = fused.reshape(-1).copy()
                order = [j for j in np.argsort(flat, kind="stable") if j != 0]
                flat[order[: int(flat.size * discard_ratio)]] = 0
                fused = flat.reshape(fused.shape)
            full = as_full(torch.as_tensor(fused)).numpy()
            if fused.shape[0] == 1:  # class attention: only the CLS row moves
                step = np.eye(t)
                step[0] = 0.5 * full[0] + 0.5 * np.eye(t)[0]
            else:
                step = 0.5 * full + 0.5 * np.eye(t)
            step = step / step.sum(axis=1, keepdims=True)
            result = step @ result
        maps.append(finish(np.mean([result[r, prefix:] for r in rows], axis=0)))
    return np.stack(maps)


def oracle_gradrollout(model, x, targets) -> np.ndarray:
    prefix, rows = prefix_and_rows(model)
    maps = []
    for i in range(x.shape[0]):
        attns, grads = attention_with_grads(model, x[i : i + 1], targets[i])
        t = attns[0].shape[-1]
        r = np.eye(t)
        for a, g in zip(attns, grads):
            cam = (g * a).clamp(min=0).mean(0)
            r = r + as_full(cam).numpy() @ r
        maps.append(finish(np.mean([r[row, prefix:] for row in rows], axis=0)))
    return np.stack(maps)


def oracle_attention(model, x, head=None, head_fusion="mean") -> np.ndarray:
    prefix, rows = prefix_and_rows(model)
    last = recompute_attention(model, x)[-1]
    maps = []
    for i in range(x.shape[0]):
        a = last[i].numpy()[:, rows, prefix:].mean(1)  # (heads, P)
        m = a[head] if head is not None else {"mean": a.mean(0), "max": a.max(0), "min": a.min(0)}[head_fusion]
        maps.append(finish(m))
    return np.stack(maps)


def assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    assert ours.min() >= 0 and ours.max() <= 1
    assert np.abs(ours - ref).max() <= TOL
    assert np.ptp(ref[0]) > 0.5 and not np.allclose(ref[0], ref[1], atol=1e-2)  # real, different maps


# ---------------------------------------------------------------------------- the comparisons
@pytest.mark.parametrize("head_fusion", ["mean", "max", "min"])
def test_rollout_matches_oracle(token_model, head_fusion) -> None:
    _, model = token_model
    x = token_input()
    ours = camscope.AttentionRollout(model, head_fusion=head_fusion)(x)
    assert_close(ours, oracle_rollout(model, x, head_fusion))


def test_rollout_discards_per_image(token_model) -> None:
    _, model = token_model
    x = token_input()
    ours = camscope.AttentionRollout(model, discard_ratio=0.9)(x)
    ref = oracle_rollout(model, x, discard_ratio=0.9)
    assert_close(ours, ref)
    # each image is discarded on its own: image 1 alone gives the same map as inside the batch
    alone = camscope.AttentionRollout(model, discard_ratio=0.9)(x[1:])
    assert np.abs(alone[0] - ours[1]).max() <= TOL


def test_gradrollout_matches_oracle(token_model) -> None:
    _, model = token_model
    x = token_input()
    targets = [1, 7]
    ours = camscope.GradientRollout(model)(x, targets)
    assert_close(ours, oracle_gradrollout(model, x, targets))


@pytest.mark.parametrize(("head", "head_fusion"), [(None, "mean"), (None, "max"), (None, "min"), (1, "mean")])
def test_attention_map_matches_oracle(token_model, head, head_fusion) -> None:
    _, model = token_model
    x = token_input()
    ours = camscope.AttentionMap(model, head=head, head_fusion=head_fusion)(x)
    assert_close(ours, oracle_attention(model, x, head, head_fusion))


def test_all_heads_are_the_single_head_maps(token_model) -> None:
    _, model = token_model
    x = token_input()
    grid = camscope.AttentionMap(model).all_heads(x)
    assert grid.shape == (2, 3, 32, 32) and grid.dtype == np.float32
    for h in range(3):
        np.testing.assert_allclose(grid[:, h], camscope.AttentionMap(model, head=h)(x), atol=1e-6)


def test_threshold_keeps_the_patches_holding_the_mass() -> None:
    model = build_token_model("vit")
    x = token_input()
    method = camscope.AttentionMap(model, threshold=0.6)
    low = method.patch_maps(x, None)[1].flatten(1)
    attn = recompute_attention(model, x)[-1][:, :, 0, 1:].mean(1)
    for i in range(2):
        a = attn[i].numpy()
        order = np.argsort(a)[::-1]
        kept = low[i].numpy() == 1
        assert set(np.unique(low[i].numpy())) <= {0.0, 1.0}
        # the kept patches are the largest ones, and the smallest set of them whose share exceeds 0.6
        k = int(kept.sum())
        assert set(np.flatnonzero(kept)) == set(order[:k].tolist())
        share = a[order].cumsum() / a.sum()
        assert share[k - 1] >= 0.6 - 1e-6 and (k == 1 or share[k - 2] < 0.6 + 1e-6)


def test_target_layers_pick_blocks() -> None:
    model = build_token_model("vit")
    x = token_input()
    # AttentionMap of block 0 given as the block, as its attention module, or as a module inside the block
    a = camscope.AttentionMap(model, [model.blocks[0]])(x)
    b = camscope.AttentionMap(model, ["blocks.0.attn"])(x)
    c = camscope.AttentionMap(model, [model.blocks[0].norm1])(x)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert not np.allclose(a, camscope.AttentionMap(model)(x))
    # rollout over the last block alone is that block's rownorm(0.5·A + 0.5·I) CLS row
    ours = camscope.AttentionRollout(model, [model.blocks[1]])(x)
    last = recompute_attention(model, x)[-1].mean(1)  # (N, T, T)
    t = last.shape[-1]
    step = 0.5 * last + 0.5 * torch.eye(t, dtype=last.dtype)
    step = step / step.sum(-1, keepdim=True)
    ref = np.stack([finish(step[i, 0, 1:].numpy()) for i in range(2)])
    assert np.abs(ours - ref).max() <= TOL


def test_rollout_ignores_targets_and_gradrollout_does_not() -> None:
    model = build_token_model("vit")
    x = token_input()
    assert np.array_equal(camscope.AttentionRollout(model)(x, [0, 0]), camscope.AttentionRollout(model)(x, [5, 9]))
    assert not np.allclose(camscope.GradientRollout(model)(x, [0, 0]), camscope.GradientRollout(model)(x, [5, 9]))


def test_registered_by_name() -> None:
    for name, cls in [
        ("attention", "AttentionMap"),
        ("rollout", "AttentionRollout"),
        ("gradrollout", "GradientRollout"),
    ]:
        assert camscope.get_method(name) is getattr(camscope, cls)


def test_bad_options_are_clear_errors() -> None:
    from camscope.core.errors import CamscopeError

    model = build_token_model("vit")
    for make in (
        lambda: camscope.AttentionRollout(model, head_fusion="median"),
        lambda: camscope.AttentionRollout(model, discard_ratio=1.0),
        lambda: camscope.AttentionMap(model, threshold=0.0),
        lambda: camscope.AttentionMap(model, head=3)(token_input()),
        lambda: camscope.AttentionRollout(model)(token_input(), eigen_smooth=True),
    ):
        with pytest.raises(CamscopeError):
            make()


def test_api_attention_heads_are_explain_per_head_on_the_models_view() -> None:
    from camscope.data import generate
    from camscope.methods.attention_capture import AttentionUnavailableError

    scene = generate(1, seed=2).images[0]
    model = camscope.load_model("mini_deit")
    maps, view = camscope.attention_heads(model, scene)
    for head in range(maps.shape[0]):
        result = camscope.explain(model, scene, "attention", head=head)
        np.testing.assert_allclose(maps[head], result.map, atol=1e-6)
    np.testing.assert_array_equal(view, result.image)
    with pytest.raises(AttentionUnavailableError, match="use a CAM method there"):
        camscope.attention_heads(camscope.load_model("mini_resnet"), scene)
