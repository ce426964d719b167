"""Each spec's preprocessing is exactly the evaluation transform its weights were published with."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.models import EfficientNet_B0_Weights, ResNet50_Weights

from camscope.core.errors import ImageLoadError
from camscope.models import IMAGENET_MEAN, IMAGENET_STD, SEED_MODELS, get_spec


@pytest.fixture(scope="module")
def image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, size=(300, 410, 3), dtype=np.uint8))


def _original(resize: int, interpolation: T.InterpolationMode) -> T.Compose:
    """The transform as written in the original repositories' evaluation scripts."""
    return T.Compose(
        [
            T.Resize(resize, interpolation=interpolation),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


BICUBIC, BILINEAR = T.InterpolationMode.BICUBIC, T.InterpolationMode.BILINEAR
ORIGINAL = {
    "resnet50": ResNet50_Weights.IMAGENET1K_V1.transforms(),
    "deit_base_patch16_224": _original(256, BICUBIC),  # DeiT: int(224 / 0.875), bicubic
    "cait_s24_224": _original(224, BICUBIC),  # eval crop ratio 1.0
    "swin_base_patch4_window7_224": _original(256, BICUBIC),  # Swin TEST.CROP: int(256 / 224 * 224)
    "xcit_small_12_p16_224": _original(224, BICUBIC),  # --full_crop
    "dino_resnet50": _original(256, BICUBIC),  # DINO eval_linear.py: Resize(256, interpolation=3)
    "dino_xcit_small_12_p16": _original(256, BICUBIC),
    "mocov3_resnet50": _original(256, BILINEAR),  # MoCo v3 main_lincls.py: Resize(256)
    "mocov3_vit_base": _original(256, BILINEAR),
}


@pytest.mark.parametrize("name", SEED_MODELS)
def test_seed_preprocessing_matches_the_original_evaluation_transform(name, image):
    spec = get_spec(name)
    got = spec.preprocess(image)
    assert got.shape == (3, 224, 224) and got.dtype == torch.float32
    assert spec.mean == IMAGENET_MEAN and spec.std == IMAGENET_STD
    torch.testing.assert_close(got, ORIGINAL[name](image), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["cait_s24_224", "xcit_small_12_p16_224"])
def test_crop_ratio_one_entries_agree_with_timms_own_config(name, image):
    config = timm.data.resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg(name).to_dict())
    torch.testing.assert_close(get_spec(name).preprocess(image), timm.data.create_transform(**config)(image))


@pytest.mark.parametrize("name", ["deit_base_patch16_224", "swin_base_patch4_window7_224"])
def test_deit_and_swin_follow_their_repository_not_timms_crop_pct(name):
    # timm evaluates these with crop_pct 0.9 (resize 248); DeiT's eval_crop_ratio and Swin's
    # TEST.CROP are 0.875 (resize 256), which is what the published accuracy was measured with.
    assert timm.models.get_pretrained_cfg(name).crop_pct == 0.9
    assert get_spec(name).preprocess.resize == 256


@pytest.mark.parametrize("name", ["convnext_atto", "timm:resnet18", "vit_tiny_patch16_224"])
def test_timm_models_outside_the_zoo_use_timms_evaluation_transform(name, image):
    cfg = timm.models.get_pretrained_cfg(name.removeprefix("timm:"))
    config = timm.data.resolve_data_config(pretrained_cfg=cfg.to_dict())
    spec = get_spec(name)
    assert spec.input_size == cfg.input_size and spec.mean == tuple(cfg.mean)
    torch.testing.assert_close(spec.preprocess(image), timm.data.create_transform(**config)(image))


def test_torchvision_models_outside_the_zoo_use_their_weights_transform(image):
    spec = get_spec("tv:efficientnet_b0")
    reference = EfficientNet_B0_Weights.DEFAULT.transforms()
    torch.testing.assert_close(spec.preprocess(image), reference(image), rtol=0, atol=1e-6)
    assert spec.preprocess.interpolation == "bicubic"


def test_arrays_and_non_rgb_images_are_accepted(image):
    preprocess = get_spec("resnet50").preprocess
    torch.testing.assert_close(preprocess(np.asarray(image)), preprocess(image))
    gray = image.convert("L")
    torch.testing.assert_close(preprocess(gray), preprocess(gray.convert("RGB")))
    torch.testing.assert_close(preprocess(np.asarray(gray)), preprocess(gray.convert("RGB")))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((32, 32, 3), dtype=np.float32), "uint8"),
        (np.zeros((3, 32, 32, 2), dtype=np.uint8), "H×W×3"),
        ("cat.jpg", "PIL image or a uint8 array"),
    ],
)
def test_unusable_inputs_are_refused_clearly(bad, message):
    with pytest.raises(ImageLoadError, match=message):
        get_spec("resnet50").preprocess(bad)
