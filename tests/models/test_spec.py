"""Spec facts of the seed zoo, and specs for models outside it."""

from __future__ import annotations

import pytest
import timm
import torchvision
from torch import nn

from camscope.core.layer_paths import module_path as layer_name
from camscope.models import SEED_MODELS, get_spec, list_models

OFFICIAL_FILES = {
    "resnet50": ["resnet50-0676ba61.pth"],
    "deit_base_patch16_224": ["deit_base_patch16_224-b5f2ef4d.pth"],
    "cait_s24_224": ["S24_224.pth"],
    "swin_base_patch4_window7_224": ["swin_base_patch4_window7_224_22kto1k.pth"],
    "xcit_small_12_p16_224": ["xcit_small_12_p16_224.pth"],
    "dino_resnet50": ["dino_resnet50_pretrain.pth", "dino_resnet50_linearweights.pth"],
    "dino_xcit_small_12_p16": ["dino_xcit_small_12_p16_pretrain.pth", "dino_xcit_small_12_p16_linearweights.pth"],
    "mocov3_resnet50": ["linear-1000ep.pth.tar"],
    "mocov3_vit_base": ["linear-vit-b-300ep.pth.tar"],
}
SSL = {
    "dino_resnet50": "DINO",
    "dino_xcit_small_12_p16": "DINO",
    "mocov3_resnet50": "MoCo v3",
    "mocov3_vit_base": "MoCo v3",
}


def test_the_zoo_holds_the_nine_seed_models():
    assert list(SEED_MODELS) == list(OFFICIAL_FILES)
    assert set(SEED_MODELS) <= set(list_models())


@pytest.mark.parametrize("name", SEED_MODELS)
def test_seed_spec_facts(name):
    spec = get_spec(name)
    assert [f.filename for f in spec.weights] == OFFICIAL_FILES[name]
    assert all(f.url and f.url.startswith("https://") and f.url.endswith(f.filename) for f in spec.weights)
    assert spec.supervised == (name not in SSL)
    assert spec.ssl_method == SSL.get(name)
    assert spec.training == ("self-supervised" if name in SSL else "supervised")
    assert spec.input_size == (3, 224, 224) and spec.num_classes == 1000
    assert spec.class_names is not None and len(spec.class_names) == 1000 and spec.class_names[0] == "tench"
    assert spec.target_layers


def test_parameter_counts_come_from_the_architecture():
    assert get_spec("resnet50").num_params() == sum(p.numel() for p in torchvision.models.resnet50().parameters())
    assert get_spec("dino_xcit_small_12_p16").num_params() == get_spec("xcit_small_12_p16_224").num_params()


def test_timm_and_torchvision_names_get_specs_with_inferred_layers():
    spec = get_spec("convnext_atto")
    assert spec.target_layers == () and "pretrained_cfg" in spec.source
    model = spec.build()
    layers, reshape = spec.cam_layers(model)
    assert layer_name(model, layers[0]) == "stages" and reshape is None
    tv = get_spec("torchvision:mobilenet_v3_small")
    assert tv.weights[0].filename.startswith("mobilenet_v3_small-") and len(tv.class_names) == 1000


def test_specs_of_model_objects():
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=96, depth=1)
    spec = get_spec(vit)
    assert spec.input_size == (3, 96, 96) and spec.preprocess.interpolation == "bicubic"
    plain = get_spec(nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    assert plain.input_size == (3, 224, 224) and "unknown" in plain.notes
