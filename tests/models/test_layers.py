"""Layer lookup by name, and target layer + reshape inference on many architectures.

Inference is checked for what a CAM needs, not only the layer's name: the reshaped output is a
(B, C, h, w) map of the expected size, and the predicted logit's gradient reaches (almost) every
position of it — which fails for a layer after the global pool or after the last token mixing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import timm
import torch
import torchvision
from torch import nn
from torchvision.models.swin_transformer import SwinTransformer
from torchvision.models.vision_transformer import VisionTransformer

from camscope.core.errors import LayerError
from camscope.core.layer_paths import module_path as layer_name
from camscope.models import ChannelsLastToFirst, TokensToGrid, infer_cam_layers, resolve_layer
from camscope.models.layers import model_input_size
from camscope.models.reshape import reshape_for_shape


def _timm(name: str, **kwargs) -> Callable[[], nn.Module]:
    return lambda: timm.create_model(name, pretrained=False, **kwargs)


def _tv(name: str, **kwargs) -> Callable[[], nn.Module]:
    return lambda: torchvision.models.get_model(name, weights=None, **kwargs)


TINY_SWIN = dict(embed_dim=16, depths=(1, 1, 2, 2), num_heads=(1, 1, 1, 1))

# (id, builder, input size, expected layer, expected reshape, expected map h×w)
ARCHITECTURES = [
    ("tv-resnet18", _tv("resnet18"), (96, 96), "layer4", None, (3, 3)),
    (
        "timm-vit",
        _timm("vit_tiny_patch16_224", img_size=96, depth=3),
        None,
        "blocks.2.norm1",
        TokensToGrid(1, (6, 6)),
        (6, 6),
    ),
    (
        "timm-deit-distilled",
        _timm("deit_tiny_distilled_patch16_224", img_size=64, depth=3),
        None,
        "blocks.2.norm1",
        TokensToGrid(2, (4, 4)),
        (4, 4),
    ),
    (
        "timm-vit-non-square",
        _timm("vit_tiny_patch16_224", img_size=(64, 96), depth=2),
        None,
        "blocks.1.norm1",
        TokensToGrid(1, (4, 6)),
        (4, 6),
    ),
    (
        "timm-vit-registers",
        _timm("vit_tiny_patch16_224", img_size=64, depth=2, reg_tokens=4),
        None,
        "blocks.1.norm1",
        TokensToGrid(5, (4, 4)),
        (4, 4),
    ),
    (
        "timm-swin",
        _timm("swin_tiny_patch4_window7_224", **TINY_SWIN),
        None,
        "layers.3.blocks.1.norm1",
        ChannelsLastToFirst(),
        (7, 7),
    ),
    (
        "timm-xcit",
        _timm("xcit_nano_12_p16_224", img_size=96, depth=3),
        None,
        "blocks.2.norm1",
        TokensToGrid(0, (6, 6)),
        (6, 6),
    ),
    (
        "timm-cait",
        _timm("cait_xxs24_224", img_size=64, depth=3),
        None,
        "blocks.2.norm1",
        TokensToGrid(0, (4, 4)),
        (4, 4),
    ),
    ("timm-convnext", _timm("convnext_atto"), (64, 64), "stages", None, (2, 2)),
    ("timm-efficientnet", _timm("efficientnet_b0"), (64, 64), "bn2", None, (2, 2)),
    ("timm-mobilenetv3", _timm("mobilenetv3_small_100"), (64, 64), "blocks", None, (2, 2)),
    ("timm-regnet", _timm("regnetx_002"), (64, 64), "s4", None, (2, 2)),
    ("tv-mobilenet_v3", _tv("mobilenet_v3_small"), (96, 96), "features", None, (3, 3)),
    ("tv-regnet", _tv("regnet_x_400mf"), (64, 64), "trunk_output", None, (2, 2)),
    (
        "tv-vit",
        lambda: VisionTransformer(image_size=48, patch_size=16, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32),
        None,
        "encoder.layers.encoder_layer_1.ln_1",
        TokensToGrid(1, (3, 3)),
        (3, 3),
    ),
    (
        "tv-swin",
        lambda: SwinTransformer(
            patch_size=[4, 4], embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=[7, 7]
        ),
        (224, 224),
        "features.7.0.norm1",
        ChannelsLastToFirst(),
        (7, 7),
    ),
]


@pytest.mark.parametrize(
    ("build", "input_hw", "expected_layer", "expected_reshape", "map_hw"),
    [case[1:] for case in ARCHITECTURES],
    ids=[case[0] for case in ARCHITECTURES],
)
def test_inferred_layer_is_a_spatial_map_the_prediction_depends_on(
    build, input_hw, expected_layer, expected_reshape, map_hw
):
    torch.manual_seed(0)
    model = build().eval()
    with torch.no_grad():  # some heads start at zero (torchvision ViT): no gradient at all
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    layers, reshape = infer_cam_layers(model, input_hw)
    assert layer_name(model, layers[0]) == expected_layer
    assert reshape == expected_reshape

    input_hw = input_hw or model_input_size(model)
    captured = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["out"] = output

    handle = layers[0].register_forward_hook(keep)
    logits = model(torch.randn(1, 3, *input_hw))
    handle.remove()
    logits[0, logits[0].argmax()].backward()
    fmap = reshape(captured["out"]) if reshape else captured["out"]
    grad = reshape(captured["out"].grad) if reshape else captured["out"].grad
    assert fmap.shape[-2:] == map_hw and grad.shape == fmap.shape
    reached = (grad.abs().sum(dim=1) > 0).float().mean()
    assert reached > 0.9, f"gradient reaches only {reached:.0%} of {expected_layer}"


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    return torchvision.models.resnet18(weights=None)


@pytest.mark.parametrize(
    ("path", "expected"),
    [("layer4.1", "layer4.1"), ("layer4[-1]", "layer4.1"), ("layer4[0].conv2", "layer4.0.conv2"), ("fc", "fc")],
)
def test_resolve_layer_accepts_dotted_and_indexed_names(resnet, path, expected):
    assert layer_name(resnet, resolve_layer(resnet, path)) == expected


def test_resolve_layer_indexes_nested_sequences():
    model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, **TINY_SWIN)
    assert layer_name(model, resolve_layer(model, "layers[-1].blocks[-1].norm1")) == "layers.3.blocks.1.norm1"


def test_resolve_layer_lists_near_matches(resnet):
    with pytest.raises(LayerError, match=r"layer4\.1 has no child 'conv4'.*near matches: layer4\.1\.conv"):
        resolve_layer(resnet, "layer4[-1].conv4")
    with pytest.raises(LayerError, match="no child 5"):
        resolve_layer(resnet, "layer4[5]")


def test_resolve_layer_accepts_a_module_of_the_model_only(resnet):
    assert resolve_layer(resnet, resnet.layer3) is resnet.layer3
    with pytest.raises(LayerError, match="not part of"):
        resolve_layer(resnet, nn.Conv2d(1, 1, 1))


def test_engine_api_and_spec_share_one_layer_vocabulary(resnet):
    """Indexed paths and close-match hints are the same for the engine (GradCAM) as for the API."""
    from camscope import GradCAM

    assert GradCAM(resnet, "layer4[-1]").target_layers == [resnet.layer4[-1]]
    assert GradCAM(resnet, ["layer4[0].conv2"]).target_layers == [resolve_layer(resnet, "layer4.0.conv2")]
    with pytest.raises(LayerError, match=r"near matches: layer4\.1\.conv"):
        GradCAM(resnet, "layer4[-1].conv4")


def test_prefix_tokens_come_from_the_model():
    """4 register tokens + a class token before a 2×2 grid: 9 tokens, which arithmetic alone reads as 3×3."""
    model = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=3, img_size=16, patch_size=8, depth=1, reg_tokens=4
    )
    assert model.num_prefix_tokens == 5
    _, reshape = infer_cam_layers(model)
    assert reshape == TokensToGrid(prefix_tokens=5, grid=(2, 2))
    # a model that does not say how many prefix tokens it has gets the arithmetic guess, wrong here
    assert reshape_for_shape((1, 9, 192), (16, 16)) == TokensToGrid(prefix_tokens=0, grid=(3, 3))
