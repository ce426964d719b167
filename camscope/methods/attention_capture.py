"""Post-softmax attention of timm token models, captured during one forward pass.

timm's attention modules compute ``softmax(q kᵀ / √d)`` and pass it through ``attn_drop`` before
multiplying with the values — unless they use fused SDPA (``fused_attn``), which never materialises
the matrix. :class:`AttentionCapture` switches ``fused_attn`` off for the call (the unfused path is the
same computation, so the model's output does not change beyond float rounding), hooks ``attn_drop``
(in eval mode its output *is* the post-softmax matrix), and restores the flags and removes the hooks
on exit, exceptions included.

Which matrices carry a class-token row, per architecture (:func:`attention_layers`):

- ViT, DeiT (distilled too), BEiT-style and other ``blocks[i].attn`` models with a class token: every
  block, ``(B, heads, T, T)`` over all tokens, ``T = num_prefix_tokens + patches``.
- CaiT: the token-to-token blocks use talking-heads attention — ``proj_w`` mixes the heads *after*
  the softmax, so what they apply to the values (what ``attn_drop`` sees, and what
  ``attention_layers(model, "all")`` returns for them) is neither per-head nor row-stochastic, and
  they have no class token anyway. The class token exists only in the class-attention blocks
  (``blocks_token_only``): their matrices ``(B, heads, 1, 1 + patches)`` (CLS query over
  ``[CLS, patches]``) are what the attention methods read.
- XCiT: the token blocks use XCA, attention between channels (no token matrix); the class-attention
  blocks (``cls_attn_blocks``) give ``(B, heads, 1, 1 + patches)`` as for CaiT.
- Swin (windowed attention, no class token) and CNNs: :class:`AttentionUnavailableError`.

Prefix tokens (class, distillation, registers) are read from the model's ``num_prefix_tokens``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from camscope.core.capture import HookSession, model_lock
from camscope.core.errors import LayerError
from camscope.core.layer_paths import module_path

#: Methods that work on any model with a spatial feature map, named in the error for models without
#: class-token attention.
MAP_METHODS = "gradcam, hirescam, layercam, gradcam++, xgradcam, scorecam, ablationcam, eigencam"

Kind = Literal["self", "class", "talking", "channel", "window"]


class AttentionUnavailableError(LayerError):
    """The model has no class-token attention matrix for attention-based methods to read."""


@dataclass(frozen=True)
class AttentionLayer:
    """One attention module: ``kind`` says what its matrix is (see the module docstring)."""

    name: str  # dotted path of the attention module
    module: Any  # a timm attention module: attn_drop, fused_attn... are not in nn.Module's type
    kind: Kind

    @property
    def has_class_row(self) -> bool:
        return self.kind in ("self", "class")


@dataclass(frozen=True)
class TokenLayout:
    """Where the class rows and the patch columns are in a class-token attention matrix."""

    num_prefix_tokens: int  # leading non-patch tokens (CLS, distillation, registers)
    class_rows: tuple[int, ...]  # the rows read as "the class token": CLS, and the distillation token if any


def _kind(module: nn.Module) -> Kind:
    name = type(module).__name__
    if name == "ClassAttn":
        return "class"
    if name == "TalkingHeadAttn":
        return "talking"
    if name == "XCA":
        return "channel"
    if "Window" in name:
        return "window"
    return "self"


def _unavailable(model: nn.Module, why: str) -> AttentionUnavailableError:
    return AttentionUnavailableError(
        f"{type(model).__name__} {why}: attention methods (attention, rollout, gradrollout, legrad) need a "
        f"ViT-family model with a class token (ViT, DeiT, CaiT, XCiT); use a CAM method there ({MAP_METHODS})"
    )


def attention_layers(model: nn.Module, which: Literal["class", "all"] = "class") -> list[AttentionLayer]:
    """The attention modules of ``model``, in forward order.

    ``which="class"``: the ones whose matrix has a class-token row (what the methods read); raises
    :class:`AttentionUnavailableError` for models without (Swin, CNNs, ViTs without a class token).
    ``which="all"``: every module with an ``attn_drop`` after its softmax (any kind), for capture only.
    """
    if which == "all":
        found = [
            AttentionLayer(name, module, _kind(module))
            for name, module in model.named_modules()
            if isinstance(getattr(module, "attn_drop", None), nn.Module)
        ]
        if not found:
            raise _unavailable(model, "has no attention modules")
        return found
    prefix = getattr(model, "num_prefix_tokens", None)
    for attr in ("blocks_token_only", "cls_attn_blocks"):  # CaiT, XCiT
        blocks = getattr(model, attr, None)
        if blocks is not None and len(blocks) > 0:
            return [_layer(model, block, "class") for block in blocks]
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.Sequential | nn.ModuleList) or len(blocks) == 0:
        raise _unavailable(model, "has no transformer blocks with token attention (windowed or no attention)")
    if not isinstance(prefix, int) or prefix < 1 or getattr(model, "cls_token", None) is None:
        raise _unavailable(model, "has no class token")
    layers = [_layer(model, block, "self") for block in blocks]
    return layers


def _layer(model: nn.Module, block: nn.Module, expected: Kind) -> AttentionLayer:
    attn = getattr(block, "attn", None)
    if not isinstance(getattr(attn, "attn_drop", None), nn.Module) or attn is None or _kind(attn) != expected:
        raise _unavailable(model, f"has a block ({type(block).__name__}) whose attention camscope cannot read")
    assert attn is not None
    return AttentionLayer(module_path(model, attn), attn, expected)


def token_layout(model: nn.Module) -> TokenLayout:
    """Prefix tokens from ``num_prefix_tokens``; the distillation token (DeiT) is a second class row."""
    prefix = int(getattr(model, "num_prefix_tokens", 1))
    rows = (0, 1) if getattr(model, "dist_token", None) is not None and prefix >= 2 else (0,)
    return TokenLayout(prefix, rows)


def patch_grid(model: nn.Module, num_patches: int, input_hw: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) layout of ``num_patches`` patch tokens for an input of size ``input_hw``."""
    embed = getattr(model, "patch_embed", None)
    candidates: list[tuple[int, int]] = []
    grid = getattr(embed, "grid_size", None)
    if grid is not None:
        candidates.append((int(grid[0]), int(grid[1])))
    patch = getattr(embed, "patch_size", None)
    if patch is not None:
        ph, pw = (patch, patch) if isinstance(patch, int) else (int(patch[0]), int(patch[1]))
        candidates.append((input_hw[0] // ph, input_hw[1] // pw))
    h = max(1, round(math.sqrt(num_patches * input_hw[0] / input_hw[1])))
    candidates.append((h, num_patches // h))
    for gh, gw in candidates:
        if gh * gw == num_patches:
            return gh, gw
    raise LayerError(f"cannot lay out {num_patches} patch tokens on a grid for an input of size {input_hw}")


class AttentionCapture(HookSession):
    """Record the post-softmax attention of ``layers`` during forward passes while active.

    On entry, ``fused_attn`` is switched off on every captured module (and restored on exit) and a
    forward hook is put on its ``attn_drop``. ``maps[i]`` is layer ``i``'s matrix from the last
    forward pass. With ``need_grad``, a matrix that does not require grad (frozen model) is made a leaf
    that does, so ``torch.autograd.grad(score, capture.maps)`` always works. Train/eval flags are the
    caller's business (methods run in :func:`camscope.core.capture.eval_mode`; in train mode ``attn_drop``'s
    output is the dropped-out matrix).
    """

    def __init__(self, model: nn.Module, layers: Sequence[AttentionLayer], need_grad: bool = False) -> None:
        self.model = model
        self.layers = list(layers)
        self.need_grad = need_grad
        self.maps: list[torch.Tensor | None] = [None] * len(self.layers)

    def _install(self) -> None:
        self._undo.append(fused_attention_off(layer.module for layer in self.layers))
        for index, layer in enumerate(self.layers):
            self._handles.append(layer.module.attn_drop.register_forward_hook(self._hook(index)))

    def _hook(self, index: int) -> Any:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
            if self.need_grad and torch.is_grad_enabled() and not output.requires_grad:
                output = output.detach().requires_grad_(True)
            self.maps[index] = output
            return output

        return hook

    def forward(self, input_tensor: torch.Tensor) -> Any:
        """Run the model; every captured layer must have run."""
        self.maps = [None] * len(self.layers)
        result = self.model(input_tensor)
        missing = [layer.name for layer, m in zip(self.layers, self.maps) if m is None]
        if missing:
            raise LayerError(f"attention layer(s) {missing} did not run in the model's forward pass")
        return result

    def recorded(self) -> list[torch.Tensor]:
        return [m for m in self.maps if m is not None]


def fused_attention_off(modules: Iterable[Any]) -> Callable[[], None]:
    """Switch ``fused_attn`` off on each of ``modules`` that has the flag (timm's attention modules;
    not in nn.Module's type); returns the function that restores the flags."""
    saved = [(m, m.fused_attn) for m in modules if isinstance(getattr(m, "fused_attn", None), bool)]
    for module, _ in saved:
        module.fused_attn = False

    def restore() -> None:
        for module, flag in reversed(saved):
            module.fused_attn = flag

    return restore


@contextmanager
def unfused_attention(model: nn.Module) -> Iterator[nn.Module]:
    """Every ``fused_attn`` flag of ``model`` off while active, then restored: for double backward
    (Hessian-vector products), which fused SDPA kernels do not support."""
    with model_lock(model):
        restore = fused_attention_off(model.modules())
        try:
            yield model
        finally:
            restore()
