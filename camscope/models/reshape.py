"""Reshape transforms: a layer's raw output → (B, C, h, w) feature maps.

CAM methods weight channels of a spatial map. Transformers hand out tokens (B, N, C) with prefix
tokens (class, distillation, register) in front; Swin hands out channels-last maps (B, H, W, C).
The transforms here are derived from the shape a layer really produces (see
:func:`reshape_for_shape`), never from a model's name, so distilled models (2 prefix tokens),
other input sizes and unknown architectures work too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from camscope.core.capture import ReshapeTransform
from camscope.core.errors import LayerError


@dataclass(frozen=True)
class TokensToGrid:
    """(B, prefix + h·w, C) tokens → (B, C, h, w), dropping the leading prefix tokens.

    If the token count does not match ``grid`` but the patch tokens form a square (a model run
    at another input size), the square grid is used; anything else is refused.
    """

    prefix_tokens: int
    grid: tuple[int, int]

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        if tensor.ndim != 3:
            raise LayerError(
                f"{self!r} expects tokens (B, N, C), got shape {tuple(tensor.shape)}; "
                "pick another target layer or reshape_transform"
            )
        batch, tokens, channels = tensor.shape
        h, w = self.grid
        patches = tokens - self.prefix_tokens
        if patches != h * w:
            side = math.isqrt(max(patches, 0))
            if patches <= 0 or side * side != patches:
                raise LayerError(
                    f"{self!r} cannot reshape output of shape {tuple(tensor.shape)}: expected "
                    f"{self.prefix_tokens} + {h}×{w} = {self.prefix_tokens + h * w} tokens"
                )
            h = w = side
        return tensor[:, self.prefix_tokens :].reshape(batch, h, w, channels).permute(0, 3, 1, 2)


@dataclass(frozen=True)
class ChannelsLastToFirst:
    """(B, H, W, C) → (B, C, H, W), for channels-last layers such as Swin's blocks."""

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        if tensor.ndim != 4:
            raise LayerError(f"{self!r} expects a channels-last map (B, H, W, C), got shape {tuple(tensor.shape)}")
        return tensor.permute(0, 3, 1, 2)


@dataclass(frozen=True)
class FeaturePyramidToGrid:
    """Named feature maps (a detector's FPN levels) → one (B, ΣC, h, w) map at the smallest level's size.

    Each level's absolute value is resized bilinearly to the last level's size (``"pool"`` in
    torchvision's FPN) and the levels are concatenated in order: pytorch-grad-cam's
    ``fasterrcnn_reshape_transform``, the one its Faster R-CNN tutorial uses.
    """

    def __call__(self, levels: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if not isinstance(levels, Mapping) or not levels:
            raise LayerError(f"{self!r} expects named feature maps (a dict of tensors), got {type(levels).__name__}")
        size = list(levels.values())[-1].shape[-2:]
        resized = [F.interpolate(value.abs(), size, mode="bilinear") for value in levels.values()]
        return torch.cat(resized, dim=1)


def reshape_for_shape(
    shape: tuple[int, ...],
    input_hw: tuple[int, int],
    channels_last_hint: bool = False,
    layer: str = "layer",
    prefix_tokens: int | None = None,
) -> ReshapeTransform | None:
    """The transform that turns an output of ``shape`` (seen at input size ``input_hw``) into NCHW.

    4-D outputs: NCHW needs nothing; NHWC is recognised because its dims 1 and 2, not 2 and 3,
    are the input downsampled by one stride (``channels_last_hint`` breaks ties such as 7×7×7).
    3-D outputs: the model's own count of prefix tokens (timm's ``num_prefix_tokens``: class,
    distillation, register tokens) when the rest forms a grid with the input's aspect ratio — blocks
    that carry no prefix (CaiT's and XCiT's trunks) do not; otherwise the largest such grid that fits
    the token count, the tokens left over in front being prefix tokens.
    """
    if len(shape) == 4:
        nchw = _downsampled(shape[2:4], input_hw)
        nhwc = _downsampled(shape[1:3], input_hw)
        if nhwc and (not nchw or channels_last_hint):
            return ChannelsLastToFirst()
        if nchw or not nhwc:
            return None
    if len(shape) == 3:
        if prefix_tokens is not None and 0 <= prefix_tokens < shape[1]:
            exact = _exact_grid(shape[1] - prefix_tokens, input_hw)
            if exact is not None:
                return TokensToGrid(prefix_tokens=prefix_tokens, grid=exact)
        grid = _token_grid(shape[1], input_hw)
        if grid is not None:
            return TokensToGrid(prefix_tokens=shape[1] - grid[0] * grid[1], grid=grid)
        raise LayerError(
            f"{layer} outputs {tuple(shape)}: {shape[1]} tokens do not form a patch grid for a "
            f"{input_hw[0]}×{input_hw[1]} input; pick another target layer"
        )
    raise LayerError(f"{layer} outputs {tuple(shape)}, which has no spatial layout; pick an earlier target layer")


def _downsampled(hw: tuple[int, ...], input_hw: tuple[int, int]) -> bool:
    """True if ``hw`` is ``input_hw`` divided by one common stride (floor or ceil)."""
    h, w = hw
    if h < 1 or w < 1 or h > input_hw[0] or w > input_hw[1]:
        return False
    for stride in range(1, max(input_hw) + 1):
        fits_h = h in (input_hw[0] // stride, -(-input_hw[0] // stride))
        fits_w = w in (input_hw[1] // stride, -(-input_hw[1] // stride))
        if fits_h and fits_w:
            return True
    return False


def _exact_grid(patches: int, input_hw: tuple[int, int]) -> tuple[int, int] | None:
    """(h, w) with h·w = ``patches`` exactly and the input's aspect ratio (to rounding), if there is one."""
    aspect = input_hw[1] / input_hw[0]
    h = max(1, round(math.sqrt(patches / aspect)))
    for candidate in (h - 1, h, h + 1):
        if candidate >= 1 and patches % candidate == 0 and round(candidate * aspect) == patches // candidate:
            return (candidate, patches // candidate)
    return None


def _token_grid(tokens: int, input_hw: tuple[int, int]) -> tuple[int, int] | None:
    """Largest (h, w) with the input's aspect ratio and h·w ≤ tokens, leaving fewer prefix than patch tokens."""
    aspect = input_hw[1] / input_hw[0]
    best: tuple[int, int] | None = None
    for h in range(1, tokens + 1):
        w = max(1, round(h * aspect))
        if h * w > tokens:
            break
        best = (h, w)
    if best is None or best[0] * best[1] < 2 or tokens - best[0] * best[1] >= best[0] * best[1]:
        return None
    return best
