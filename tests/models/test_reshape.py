"""Reshape transforms: token and channels-last layouts → (B, C, h, w), derived from shapes."""

from __future__ import annotations

import pytest
import torch

from camscope.core.errors import LayerError
from camscope.models import ChannelsLastToFirst, TokensToGrid
from camscope.models.reshape import reshape_for_shape


def test_tokens_to_grid_drops_prefix_tokens_and_keeps_row_major_patch_order():
    tokens = torch.arange(2 * 7 * 3, dtype=torch.float32).reshape(1, 14, 3)  # 2 prefix + 3×4 grid
    fmap = TokensToGrid(prefix_tokens=2, grid=(3, 4))(tokens)
    assert fmap.shape == (1, 3, 3, 4)
    # patch (row 1, col 2) is token 2 + 1 * 4 + 2
    torch.testing.assert_close(fmap[0, :, 1, 2], tokens[0, 2 + 6])


def test_tokens_to_grid_accepts_another_square_input_size():
    fmap = TokensToGrid(1, (14, 14))(torch.zeros(2, 1 + 24 * 24, 8))
    assert fmap.shape == (2, 8, 24, 24)


@pytest.mark.parametrize("shape", [(1, 150, 8), (1, 197, 8, 1)])
def test_tokens_to_grid_refuses_outputs_that_do_not_fit_and_names_the_shape(shape):
    with pytest.raises(LayerError, match=r"TokensToGrid\(prefix_tokens=1, grid=\(14, 14\)\).*" + str(shape[1])):
        TokensToGrid(1, (14, 14))(torch.zeros(shape))


def test_channels_last_to_first():
    x = torch.randn(2, 7, 5, 16)
    torch.testing.assert_close(ChannelsLastToFirst()(x), x.permute(0, 3, 1, 2))
    with pytest.raises(LayerError, match=r"\(2, 49, 16\)"):
        ChannelsLastToFirst()(torch.zeros(2, 49, 16))


def test_transforms_have_readable_reprs_and_compare_by_value():
    assert repr(TokensToGrid(2, (14, 14))) == "TokensToGrid(prefix_tokens=2, grid=(14, 14))"
    assert repr(ChannelsLastToFirst()) == "ChannelsLastToFirst()"
    assert TokensToGrid(1, (7, 7)) == TokensToGrid(1, (7, 7))


@pytest.mark.parametrize(
    ("shape", "input_hw", "expected"),
    [
        ((1, 197, 768), (224, 224), TokensToGrid(1, (14, 14))),  # ViT / DeiT
        ((1, 198, 192), (224, 224), TokensToGrid(2, (14, 14))),  # distilled DeiT
        ((1, 196, 384), (224, 224), TokensToGrid(0, (14, 14))),  # CaiT trunk, XCiT blocks
        ((1, 577, 768), (384, 384), TokensToGrid(1, (24, 24))),  # ViT at 384
        ((1, 1 + 14 * 20, 64), (224, 320), TokensToGrid(1, (14, 20))),  # non-square input
        ((1, 5 + 16, 64), (64, 64), TokensToGrid(5, (4, 4))),  # class + 4 register tokens
        ((1, 49, 1024), (224, 224), TokensToGrid(0, (7, 7))),  # Swin norm2 tokens
        ((1, 7, 7, 1024), (224, 224), ChannelsLastToFirst()),  # Swin norm1 / block output
        ((1, 2048, 7, 7), (224, 224), None),  # ResNet layer4
        ((1, 3, 224, 224), (224, 224), None),
    ],
)
def test_reshape_is_derived_from_the_output_shape(shape, input_hw, expected):
    assert reshape_for_shape(shape, input_hw) == expected


def test_ambiguous_four_d_maps_follow_the_models_channels_last_hint():
    assert reshape_for_shape((1, 7, 7, 7), (224, 224)) is None
    assert reshape_for_shape((1, 7, 7, 7), (224, 224), channels_last_hint=True) == ChannelsLastToFirst()


@pytest.mark.parametrize("shape", [(1, 768), (1, 1, 384)])
def test_outputs_without_a_spatial_layout_are_refused(shape):
    with pytest.raises(LayerError, match=r"blocks\.3"):
        reshape_for_shape(shape, (224, 224), layer="blocks.3")
