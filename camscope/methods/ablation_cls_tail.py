"""The rest of a ViT after its last block's ``norm1``, for the tokens its head reads only.

Why: Ablation-CAM at ``blocks[-1].norm1`` scores one perturbed copy of that layer's output per channel.
The generic tail (:mod:`camscope.methods.ablation_tail`) reruns the whole last block for every copy, although the
classifier reads only the class token (and DeiT's distillation token). Setting channel ``k`` of the
``norm1`` output ``Y`` (T tokens × C) to ``v`` changes it by a rank-1 term, ``Y' = Y + a e_kᵀ`` with
``a_t = v − Y[t, k]``, so the attention's projections change by rank-1 terms too::

    QKV' = Y' W_qkvᵀ + b = QKV + a ⊗ W_qkv[:, k]

Only the prefix tokens' queries matter: their attention rows over all T keys and values, the output
projection, the residual (the block's input, unchanged by the ablation) and the MLP are computed for the
P prefix tokens only, batched over channels; the final norm and the model's own ``forward_head`` follow.
Per channel this costs O(T·C + P·C²) instead of the block's O(T·C²).

It applies to timm ``VisionTransformer`` models (class-token pooling, also the distilled DeiT) whose
last block and attention are timm's ``Block`` and ``Attention``; :func:`build_cls_tail` returns None
otherwise. Like the generic tail, a split is verified on the real input (it must reproduce the model's
logits from the recorded layer output) before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from camscope.core.capture import LayerCapture
from camscope.core.targets import model_logits


@dataclass
class ClsTailInputs:
    """What the CLS path needs of N images: the layer output (N, T, C), the prefix tokens of the block's
    input (N, P, C) (the residual), and the model's logits."""

    layer_output: torch.Tensor
    prefix_input: torch.Tensor
    logits: torch.Tensor


def _applies(model: Any, layer_path: str) -> tuple[Any, Any] | None:
    """(last block, its attention) when ``layer_path`` is the last block's norm1 of a supported ViT."""
    try:
        from timm.layers import Attention  # type: ignore[attr-defined]  # timm re-exports without __all__
        from timm.models.deit import VisionTransformerDistilled
        from timm.models.vision_transformer import Block, VisionTransformer
    except ImportError:  # pragma: no cover - timm is a dependency
        return None
    cls = type(model)
    if not isinstance(model, VisionTransformer) or cls.forward is not VisionTransformer.forward:
        return None
    if cls.forward_head is VisionTransformer.forward_head:
        if getattr(model, "attn_pool", None) is not None or model.global_pool != "token":
            return None
    elif cls.forward_head is not VisionTransformerDistilled.forward_head:
        return None
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.Sequential) or len(blocks) == 0:
        return None
    block = blocks[-1]
    if type(block).forward is not Block.forward or layer_path != f"blocks.{len(blocks) - 1}.norm1":
        return None
    attn: Any = block.attn
    if type(attn).forward is not Attention.forward or getattr(attn, "gate", None) is not None:
        return None
    if model.num_prefix_tokens < 1:
        return None
    return block, attn


class ClsTail:
    """``model`` after ``blocks[-1].norm1``, for the prefix tokens only (see the module docstring)."""

    # timm's blocks are typed as plain nn.Module: their submodules and attributes resolve as Any here
    def __init__(self, model: Any, block: Any, attn: Any) -> None:
        self.model: Any = model
        self.block = block
        self.attn = attn
        self.prefix = int(model.num_prefix_tokens)

    def prepare(self, input_tensor: torch.Tensor) -> ClsTailInputs:
        """One forward pass recording the layer's output and the block's input (the layer's input)."""
        with LayerCapture(self.model, [self.block.norm1], record_inputs=True) as capture:
            logits = model_logits(capture.forward(input_tensor))
        output, block_input = capture.outputs[0], capture.inputs[0]
        assert isinstance(output, torch.Tensor) and block_input is not None  # norm1 outputs one tensor
        return ClsTailInputs(output, block_input[:, : self.prefix].clone(), logits)

    def projections(self, layer_output: torch.Tensor) -> torch.Tensor:
        """The unablated q, k, v of one image's tokens, (T, 3A): computed once, shared by every ablation."""
        return F.linear(layer_output[0], self.attn.qkv.weight, self.attn.qkv.bias)

    def ablated_logits(
        self,
        layer_output: torch.Tensor,
        prefix_input: torch.Tensor,
        channels: torch.Tensor,
        value: float,
        projections: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of one image (``layer_output`` (1, T, C), ``prefix_input`` (1, P, C)) with each of
        ``channels`` (B,) of the layer output set to ``value``, one row per channel: (B, classes).
        ``projections``: :meth:`projections` of the image, if already computed."""
        y = layer_output[0]
        shift = value - y[:, channels].T  # (B, T): a_t for each ablated channel
        columns = self.attn.qkv.weight[:, channels].T  # (B, 3A): W_qkv[:, k]
        base = self.projections(layer_output) if projections is None else projections
        return self._prefix_logits(base, prefix_input, shift, columns)

    def _prefix_logits(
        self, base: torch.Tensor, prefix_input: torch.Tensor, shift: torch.Tensor, columns: torch.Tensor
    ) -> torch.Tensor:
        """Logits for the layer output whose projections ``base`` (T, 3A) change by ``shift[b] ⊗ columns[b]``
        for each row b (``columns[b] = W_qkv[:, k]``): the prefix rows of the last block, then the head."""
        attn, block, p = self.attn, self.block, self.prefix
        t = base.shape[0]
        a_dim = base.shape[1] // 3
        heads, head_dim = attn.num_heads, attn.head_dim

        def project(part: int, tokens: int) -> torch.Tensor:
            """Rows ``:tokens`` of q (part 0), k (1) or v (2) after the change, as (B, heads, tokens, d)."""
            cols = slice(part * a_dim, (part + 1) * a_dim)
            out = base[None, :tokens, cols] + shift[:, :tokens, None] * columns[:, None, cols]
            return out.view(-1, tokens, heads, head_dim).transpose(1, 2)

        q = attn.q_norm(project(0, p))
        k = attn.k_norm(project(1, t))
        v = project(2, t)
        weights = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, heads, P, T)
        mixed = (weights @ v).transpose(1, 2).reshape(-1, p, a_dim)
        x = prefix_input + block.drop_path1(block.ls1(attn.proj_drop(attn.proj(attn.norm(mixed)))))
        x = x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))
        return model_logits(self.model.forward_head(self.model.norm(x)))

    def verify(self, inputs: ClsTailInputs, atol: float = 1e-4) -> bool:
        """The unchanged path (shift 0) must reproduce the model's logits per image, as the generic tail's check."""
        t = inputs.layer_output.shape[1]
        zero_shift = inputs.layer_output.new_zeros(1, t)
        zero_columns = inputs.layer_output.new_zeros(1, self.attn.qkv.weight.shape[0])
        for index in range(inputs.layer_output.shape[0]):
            base = self.projections(inputs.layer_output[index : index + 1])
            logits = self._prefix_logits(base, inputs.prefix_input[index : index + 1], zero_shift, zero_columns)
            expected = inputs.logits[index : index + 1]
            scale = max(1.0, float(expected.abs().max()))
            if logits.shape != expected.shape or not torch.allclose(logits, expected, rtol=1e-4, atol=atol * scale):
                return False
        return True


def build_cls_tail(
    model: nn.Module, layer_path: str, input_tensor: torch.Tensor
) -> tuple[ClsTail, ClsTailInputs] | None:
    """The CLS path of ``model`` at ``layer_path``, verified on ``input_tensor``; None where it does not apply."""
    found = _applies(model, layer_path)
    if found is None or model.training:
        return None
    tail = ClsTail(model, *found)
    with torch.inference_mode():
        inputs = tail.prepare(input_tensor)
        return (tail, inputs) if tail.verify(inputs) else None
