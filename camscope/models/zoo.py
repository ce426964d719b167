"""The seed zoo: nine supervised and self-supervised ImageNet classifiers, from official files.

Each entry is data only — the loading code is shared (:mod:`camscope.models.loading`). The
facts were checked against the original repositories and timm 1.0.31:

* file containers: DeiT/CaiT/Swin/XCiT save ``{'model': …}`` (CaiT with ``module.`` keys, XCiT
  also ``model_ema`` — never used — and ``args``); DINO linear heads and MoCo v3 save
  ``{'state_dict': {'module.' + k}, 'epoch', 'optimizer', …}`` (DINO's head is ``module.linear``);
* evaluation transforms: DINO ``eval_linear.py`` resize 256 bicubic; MoCo v3 ``main_lincls.py``
  resize 256 bilinear; DeiT resize 256 bicubic; CaiT S24/224 and XCiT crop ratio 1.0 bicubic;
  Swin ``TEST.CROP`` resize 256 bicubic; torchvision IMAGENET1K_V1 resize 256 bilinear; all
  crop 224 with ImageNet mean/std;
* DINO's XCiT linear head reads the final normalised class token (384-d), which is exactly
  timm's XCiT head, so it loads into ``head``; DINO's ResNet head replaces ``fc``.
"""

from __future__ import annotations

from typing import Any

from camscope.models.checkpoint import DropPrefix, RenamePrefix, StripPrefix, Take, TimmFilter
from camscope.models.foreign import imagenet_class_names
from camscope.models.preprocess import Preprocess
from camscope.models.spec import ModelSpec, TimmBuilder, TorchvisionBuilder, register_model
from camscope.models.weights import WeightsFile

_DINO = "https://dl.fbaipublicfiles.com/dino"
_MOCO = "https://dl.fbaipublicfiles.com/moco-v3"

RESNET_LAYER = ("layer4[-1]",)
VIT_LAYER = ("blocks[-1].norm1",)
XCIT_LAYER = ("blocks[-1]",)

# Conversion step lists shared by several files.
_MODEL_KEY = (Take("model"),)
_DDP_STATE_DICT = (Take("state_dict"), StripPrefix("module."))


def _dino_head(target: str) -> tuple[Any, ...]:
    """DINO eval_linear.py saves {'state_dict': {'module.linear.weight', …}}; map onto ``target``."""
    return (Take("state_dict"), RenamePrefix("module.linear.", f"{target}."))


def seed_specs() -> list[ModelSpec]:
    classes = imagenet_class_names()
    deit_eval = Preprocess.imagenet(256, 224, "bicubic")
    full_crop = Preprocess.imagenet(224, 224, "bicubic")
    dino_eval = Preprocess.imagenet(256, 224, "bicubic")
    moco_eval = Preprocess.imagenet(256, 224, "bilinear")
    return [
        ModelSpec(
            name="resnet50",
            family="ResNet",
            build=TorchvisionBuilder("resnet50"),
            preprocess=Preprocess.imagenet(256, 224, "bilinear"),
            weights=(
                WeightsFile("resnet50-0676ba61.pth", "https://download.pytorch.org/models/resnet50-0676ba61.pth"),
            ),
            target_layers=RESNET_LAYER,
            class_names=classes,
            source="torchvision ResNet50_Weights.IMAGENET1K_V1",
        ),
        ModelSpec(
            name="deit_base_patch16_224",
            family="DeiT",
            build=TimmBuilder("deit_base_patch16_224"),
            preprocess=deit_eval,
            weights=(
                WeightsFile(
                    "deit_base_patch16_224-b5f2ef4d.pth",
                    "https://dl.fbaipublicfiles.com/deit/deit_base_patch16_224-b5f2ef4d.pth",
                    convert=_MODEL_KEY,
                ),
            ),
            target_layers=VIT_LAYER,
            class_names=classes,
            source="https://github.com/facebookresearch/deit",
        ),
        ModelSpec(
            name="cait_s24_224",
            family="CaiT",
            build=TimmBuilder("cait_s24_224"),
            preprocess=full_crop,
            weights=(
                WeightsFile(
                    "S24_224.pth",
                    "https://dl.fbaipublicfiles.com/deit/S24_224.pth",
                    convert=(*_MODEL_KEY, TimmFilter("cait")),
                ),
            ),
            target_layers=VIT_LAYER,
            class_names=classes,
            source="https://github.com/facebookresearch/deit (CaiT)",
            notes="trained with distillation from a RegNetY teacher",
        ),
        ModelSpec(
            name="swin_base_patch4_window7_224",
            family="Swin",
            build=TimmBuilder("swin_base_patch4_window7_224"),
            preprocess=deit_eval,
            weights=(
                WeightsFile(
                    "swin_base_patch4_window7_224_22kto1k.pth",
                    "https://github.com/SwinTransformer/storage/releases/download/v1.0.0/"
                    "swin_base_patch4_window7_224_22kto1k.pth",
                    convert=(*_MODEL_KEY, TimmFilter("swin_transformer")),
                ),
            ),
            target_layers=("layers[-1].blocks[-1].norm1",),
            class_names=classes,
            source="https://github.com/microsoft/Swin-Transformer",
            notes="ImageNet-22k pre-training, ImageNet-1k fine-tuning",
        ),
        ModelSpec(
            name="xcit_small_12_p16_224",
            family="XCiT",
            build=TimmBuilder("xcit_small_12_p16_224"),
            preprocess=full_crop,
            weights=(
                WeightsFile(
                    "xcit_small_12_p16_224.pth",
                    "https://dl.fbaipublicfiles.com/xcit/xcit_small_12_p16_224.pth",
                    convert=(*_MODEL_KEY, TimmFilter("xcit")),
                ),
            ),
            target_layers=XCIT_LAYER,
            class_names=classes,
            source="https://github.com/facebookresearch/xcit",
        ),
        ModelSpec(
            name="dino_resnet50",
            family="ResNet",
            build=TorchvisionBuilder("resnet50"),
            preprocess=dino_eval,
            weights=(
                WeightsFile(
                    "dino_resnet50_pretrain.pth",
                    f"{_DINO}/dino_resnet50_pretrain/dino_resnet50_pretrain.pth",
                    # DINO's hub loads this into a resnet50 whose fc is Identity (strict=False):
                    # any fc entry is not the backbone's; the classifier is the linear file.
                    convert=(DropPrefix("fc."),),
                    role="backbone",
                ),
                WeightsFile(
                    "dino_resnet50_linearweights.pth",
                    f"{_DINO}/dino_resnet50_pretrain/dino_resnet50_linearweights.pth",
                    convert=_dino_head("fc"),
                    role="linear head",
                ),
            ),
            target_layers=RESNET_LAYER,
            training="self-supervised",
            ssl_method="DINO",
            class_names=classes,
            source="https://github.com/facebookresearch/dino",
        ),
        ModelSpec(
            name="dino_xcit_small_12_p16",
            family="XCiT",
            build=TimmBuilder("xcit_small_12_p16_224"),
            preprocess=dino_eval,
            weights=(
                WeightsFile(
                    "dino_xcit_small_12_p16_pretrain.pth",
                    f"{_DINO}/dino_xcit_small_12_p16_pretrain/dino_xcit_small_12_p16_pretrain.pth",
                    convert=(TimmFilter("xcit"),),
                    role="backbone",
                ),
                WeightsFile(
                    "dino_xcit_small_12_p16_linearweights.pth",
                    f"{_DINO}/dino_xcit_small_12_p16_pretrain/dino_xcit_small_12_p16_linearweights.pth",
                    convert=_dino_head("head"),
                    role="linear head",
                ),
            ),
            target_layers=XCIT_LAYER,
            training="self-supervised",
            ssl_method="DINO",
            class_names=classes,
            source="https://github.com/facebookresearch/dino",
        ),
        ModelSpec(
            name="mocov3_resnet50",
            family="ResNet",
            build=TorchvisionBuilder("resnet50"),
            preprocess=moco_eval,
            weights=(
                WeightsFile(
                    "linear-1000ep.pth.tar", f"{_MOCO}/r-50-1000ep/linear-1000ep.pth.tar", convert=_DDP_STATE_DICT
                ),
            ),
            target_layers=RESNET_LAYER,
            training="self-supervised",
            ssl_method="MoCo v3",
            class_names=classes,
            source="https://github.com/facebookresearch/moco-v3 (1000-epoch pre-training, linear probe)",
        ),
        ModelSpec(
            name="mocov3_vit_base",
            family="ViT",
            build=TimmBuilder("deit_base_patch16_224"),
            preprocess=moco_eval,
            weights=(
                WeightsFile(
                    "linear-vit-b-300ep.pth.tar",
                    f"{_MOCO}/vit-b-300ep/linear-vit-b-300ep.pth.tar",
                    convert=_DDP_STATE_DICT,
                ),
            ),
            target_layers=VIT_LAYER,
            training="self-supervised",
            ssl_method="MoCo v3",
            class_names=classes,
            source="https://github.com/facebookresearch/moco-v3 (ViT-B 300-epoch pre-training, linear probe)",
        ),
    ]


SEED_MODELS: tuple[str, ...] = tuple(spec.name for spec in (register_model(s) for s in seed_specs()))
