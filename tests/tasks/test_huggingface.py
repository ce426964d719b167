"""Hugging Face transformers image models natively: ``.logits`` read by the adapter, target layer and
token layout (class token, DeiT's distillation token, DINOv2's registers, Swin's none) inferred from the
model as for timm.

Parity: pytorch-grad-cam 1.5.7 with its Hugging Face tutorial's wrapper (``HuggingfaceToTensorModelWrapper``:
``model(x).logits``) and a hand-written reshape transform (drop the prefix tokens, tokens → grid) against
camscope given the bare model and nothing else. Tiny random configs, nothing downloaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as hf
from pytorch_grad_cam import GradCAM as PeerGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget as PeerTarget
from torch import nn

import camscope
from camscope import GradCAM
from camscope.core.errors import CamscopeWarning, InputError, LayerError
from camscope.core.layer_paths import module_path as layer_name
from camscope.models import IMAGENET_MEAN, get_spec
from camscope.models.layers import infer_cam_layers
from camscope.pipeline import model_and_batch
from tests.tasks.conftest import OutputOf

VIT_LIKE = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8
)
SWIN = dict(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4)

# name: (config, model class, expected inferred layer, prefix tokens)
MODELS: dict[str, tuple[object, type[nn.Module], str, int]] = {
    "vit": (hf.ViTConfig(**VIT_LIKE), hf.ViTForImageClassification, "vit.layers.1.layernorm_before", 1),
    "deit": (hf.DeiTConfig(**VIT_LIKE), hf.DeiTForImageClassification, "deit.layers.1.layernorm_before", 2),
    "beit": (hf.BeitConfig(**VIT_LIKE), hf.BeitForImageClassification, "beit.layers.1.layernorm_before", 1),
    "dinov2": (hf.Dinov2Config(**VIT_LIKE), hf.Dinov2ForImageClassification, "dinov2.encoder.layer.1.norm1", 1),
    "dinov2_registers": (
        hf.Dinov2WithRegistersConfig(**VIT_LIKE, num_register_tokens=4),
        hf.Dinov2WithRegistersForImageClassification,
        "dinov2_with_registers.encoder.layer.1.norm1",
        5,
    ),
    "swin": (
        hf.SwinConfig(**SWIN),
        hf.SwinForImageClassification,
        "swin.encoder.layers.1.blocks.0.layernorm_before",
        0,
    ),
}


def _build(name: str) -> nn.Module:
    config, cls, _, _ = MODELS[name]
    config.num_labels = 5  # type: ignore[attr-defined]
    torch.manual_seed(0)
    return cls(config).eval()


def tutorial_reshape(prefix: int, side: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The peer tutorial's ``reshape_transform_vit_huggingface``, with this model's prefix and grid."""

    def reshape(x: torch.Tensor) -> torch.Tensor:
        activations = x[:, prefix:, :]
        activations = activations.view(activations.shape[0], side, side, activations.shape[2])
        return activations.transpose(2, 3).transpose(1, 2)

    return reshape


@pytest.mark.parametrize("name", list(MODELS))
def test_inferred_layout_and_parity_with_peer(name: str) -> None:
    model = _build(name)
    _, _, expected_layer, prefix = MODELS[name]
    layers, reshape = infer_cam_layers(model)
    assert [layer_name(model, m) for m in layers] == [expected_layer]
    assert getattr(reshape, "prefix_tokens", None) == prefix
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ours = GradCAM(model, layers, reshape)(x, targets=[1, 3])
    with PeerGradCAM(OutputOf(model, "logits"), layers, reshape_transform=tutorial_reshape(prefix, 4)) as cam:
        peer = cam(x, targets=[PeerTarget(1), PeerTarget(3)])
    assert ours.std() > 0.01
    np.testing.assert_allclose(ours, peer, atol=1e-4)
    # the peer's call shape with no reshape transform at all: the token layout is the model's own
    np.testing.assert_allclose(GradCAM(model, layers)(x, targets=[1, 3]), ours, atol=1e-6)


def test_explain_takes_a_transformers_model_as_it_is() -> None:
    model = _build("deit")
    picture = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    result = camscope.explain(model, picture, method="gradcam", targets=2)
    assert isinstance(result, camscope.Explanation)
    assert result.layers == ["deit.layers.1.layernorm_before"]
    assert result.map.shape == (32, 32) and result.target == 2
    assert len(result.top_classes) == 5


def test_a_named_layer_gets_its_token_layout() -> None:
    model = _build("dinov2_registers")
    picture = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    result = camscope.explain(model, picture, layers=["dinov2_with_registers.encoder.layer.0.norm1"])
    assert isinstance(result, camscope.Explanation) and result.map.std() > 0


def test_a_transformers_model_without_patch_grid_is_one_line_error() -> None:
    text_model = hf.BertForSequenceClassification(
        hf.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    )
    with pytest.raises(LayerError, match="has no patch grid") as info:
        infer_cam_layers(text_model)
    assert "\n" not in str(info.value)


def test_a_transformers_model_without_patch_grid_given_an_image_is_one_line_error() -> None:
    """pytorch-grad-cam's call shape (a layer picked by hand, an image tensor) on a text model."""
    text_model = hf.BertForSequenceClassification(
        hf.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    )
    layer = text_model.bert.encoder.layer[-1].output
    with pytest.raises(InputError, match=r"BertForSequenceClassification .*has no patch grid") as info:
        GradCAM(text_model, [layer])(torch.rand(1, 3, 32, 32))
    assert "\n" not in str(info.value)


def test_wrong_input_size_names_the_expected_size() -> None:
    model = _build("vit")
    layers, reshape = infer_cam_layers(model)
    with pytest.raises(InputError, match="expects 32x32 inputs, got 40x40"):
        GradCAM(model, layers, reshape)(torch.randn(1, 3, 40, 40))


def _vit(**config: object) -> nn.Module:
    torch.manual_seed(0)
    return hf.ViTForImageClassification(hf.ViTConfig(**VIT_LIKE, num_labels=5, **config)).eval()


PICTURE = (np.random.default_rng(2).random((32, 32, 3)) * 255).astype(np.uint8)


def test_normalisation_is_read_from_the_config() -> None:
    model = _vit(image_mean=[0.5, 0.5, 0.5], image_std=[0.25, 0.5, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CamscopeWarning)  # the model says how it normalises: nothing to warn of
        x = model_and_batch(model, PICTURE).x[0]
    pixels = model_and_batch(_vit(image_mean=[0.0] * 3, image_std=[1.0] * 3), PICTURE).x[0]  # [0, 1], same geometry
    expected = (pixels - 0.5) / torch.tensor([0.25, 0.5, 0.5])[:, None, None]
    torch.testing.assert_close(x, expected, atol=1e-6, rtol=1e-6)
    assert get_spec(model).mean == (0.5, 0.5, 0.5) and get_spec(model).std == (0.25, 0.5, 0.5)


def test_normalisation_is_read_from_the_image_processor_saved_beside_the_model(tmp_path: Path) -> None:
    _vit().save_pretrained(tmp_path)
    hf.ViTImageProcessor(image_mean=[0.2, 0.3, 0.4], image_std=[0.6, 0.7, 0.8]).save_pretrained(tmp_path)
    model = hf.ViTForImageClassification.from_pretrained(tmp_path).eval()
    spec = get_spec(model)
    assert spec.mean == (0.2, 0.3, 0.4) and spec.std == (0.6, 0.7, 0.8)
    assert str(tmp_path / "preprocessor_config.json") in spec.source


def test_without_a_normalisation_imagenet_is_assumed_with_a_warning_and_a_flag() -> None:
    model = _vit()
    with pytest.warns(CamscopeWarning, match="ImageNet mean/std assumed"):
        result = camscope.explain(model, PICTURE, "gradcam")
        spec = get_spec(model)
    assert isinstance(result, camscope.Explanation)
    assert any("ImageNet mean/std assumed" in w for w in result.warnings)
    assert spec.mean == IMAGENET_MEAN and "ImageNet mean/std assumed" in spec.notes


def test_a_bad_normalisation_in_the_config_is_one_line_error() -> None:
    with pytest.raises(InputError, match="positive std") as info:
        get_spec(_vit(image_mean=[0.5] * 3, image_std=[0.0] * 3))
    assert "\n" not in str(info.value)


# the image processors whose geometry camscope reads from the file save_pretrained writes, for a 32 px model
PROCESSORS = {
    "vit (squash)": lambda: hf.ViTImageProcessor(size={"height": 32, "width": 32}),
    "convnext (crop_pct)": lambda: hf.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875),
    "deit (squash, crop)": lambda: hf.DeiTImageProcessor(
        size={"height": 40, "width": 40}, crop_size={"height": 32, "width": 32}
    ),
    "clip (shorter side, crop)": lambda: hf.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ),
}
WIDE = (np.random.default_rng(4).random((48, 64, 3)) * 255).astype(np.uint8)  # not square: resize and crop matter


def _saved_with(tmp_path: Path, processor: object) -> nn.Module:
    _vit().save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)  # type: ignore[attr-defined]
    return hf.ViTForImageClassification.from_pretrained(tmp_path).eval()


@pytest.mark.parametrize("kind", PROCESSORS)
def test_resize_and_crop_are_the_saved_image_processors(tmp_path: Path, kind: str) -> None:
    from PIL import Image

    processor = PROCESSORS[kind]()
    model = _saved_with(tmp_path, processor)
    ours = model_and_batch(model, WIDE).x[0]
    theirs = processor(images=Image.fromarray(WIDE), return_tensors="pt").pixel_values[0]
    # equal up to one uint8 step of rounding inside the processor's resize, on a pixel here and there
    step = 1.01 / 255 / min(processor.image_std)
    assert float((ours - theirs).abs().max()) <= step and float((ours - theirs).abs().mean()) < 1e-3
    assert str(tmp_path / "preprocessor_config.json") in get_spec(model).notes
    if kind.startswith("convnext"):  # what was assumed before reading the file: another input altogether
        assumed = model_and_batch(_vit(image_mean=processor.image_mean, image_std=processor.image_std), WIDE).x[0]
        assert float((assumed - theirs).abs().mean()) > 0.05


def test_a_processor_geometry_that_does_not_end_at_the_models_input_is_not_used(tmp_path: Path) -> None:
    model = _saved_with(tmp_path, hf.ViTImageProcessor(size={"height": 48, "width": 48}))
    spec = get_spec(model)
    assert spec.input_size == (3, 32, 32) and "assumed" in spec.notes  # the model's own 32 px, as before
