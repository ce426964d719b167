"""All nine seed models load from files in their official container formats, through one path.

Each architecture is built once with random weights (perturbed so no parameter or BatchNorm
statistic is at its initial value), written the way the original repository writes it, loaded
back with ``load_model(name, weights=folder)``, and must give the same logits. The writers below
invert the official → timm mappings by hand, from the original code:

* Swin (microsoft/Swin-Transformer): ``head`` is a Linear, ``downsample`` sits at the end of a
  stage, ``relative_position_index`` and ``attn_mask`` are saved buffers;
* XCiT (facebookresearch/xcit): ``pos_embeder``, class attention with one fused ``qkv``; the
  checkpoint also holds ``model_ema`` (different weights here, so using it would fail), the
  optimizer and the ``argparse.Namespace`` of the run;
* DINO (facebookresearch/dino): backbone without classifier + eval_linear.py's
  ``{'epoch', 'state_dict': {'module.linear.*'}, 'optimizer', 'scheduler', 'best_acc'}``;
* MoCo v3 (facebookresearch/moco-v3): main_lincls.py's ``{'epoch', 'arch', 'state_dict':
  {'module.' + k}, 'best_acc1', 'optimizer'}``.
"""

from __future__ import annotations

import argparse
import re
import shutil
from collections.abc import Callable

import pytest
import timm
import torch
import torchvision
from torch import nn

from camscope.core.errors import WeightsError
from camscope.core.layer_paths import module_path as layer_name
from camscope.models import (
    SEED_MODELS,
    ChannelsLastToFirst,
    TokensToGrid,
    get_spec,
    load_model,
)

pytestmark = pytest.mark.slow

ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "resnet50": lambda: torchvision.models.resnet50(weights=None),
    "deit_base": lambda: timm.create_model("deit_base_patch16_224", pretrained=False),
    "cait_s24": lambda: timm.create_model("cait_s24_224", pretrained=False),
    "swin_base": lambda: timm.create_model("swin_base_patch4_window7_224", pretrained=False),
    "xcit_small": lambda: timm.create_model("xcit_small_12_p16_224", pretrained=False),
}


def _perturbed(model: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.02)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
    return model.eval()


# --- official writers (timm / torchvision state → the original repository's file) ------------------


def _sgd_state(*shapes: int) -> dict:
    return torch.optim.SGD([torch.zeros(s) for s in shapes], lr=0.1, momentum=0.9).state_dict()


def official_swin(model: nn.Module) -> dict:
    state = {}
    for key, value in model.state_dict().items():
        key = key.replace("head.fc.", "head.")
        key = re.sub(r"layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key)
        state[key] = value
    for key, buffer in model.named_buffers():  # persistent buffers in the original code
        if key.endswith(("relative_position_index", "attn_mask")):
            state[key] = buffer
    return state


def official_xcit(model: nn.Module, head: bool = True) -> dict:
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("pos_embed."):
            key = "pos_embeder." + key[len("pos_embed.") :]
        if head or not key.startswith("head."):
            state[key] = value
    for i in range(len(model.cls_attn_blocks)):
        prefix = f"cls_attn_blocks.{i}.attn."
        for kind in ("weight", "bias"):
            parts = [state.pop(f"{prefix}{p}.{kind}") for p in "qkv"]
            state[f"{prefix}qkv.{kind}"] = torch.cat(parts)
    return state


def _xcit_run_args() -> argparse.Namespace:
    return argparse.Namespace(model="xcit_small_12_p16", batch_size=128, lr=5e-4, epochs=400, output_dir="/ckpt")


def _dino_linear(weight: torch.Tensor, bias: torch.Tensor) -> dict:
    return {
        "epoch": 100,
        "state_dict": {"module.linear.weight": weight, "module.linear.bias": bias},
        "optimizer": _sgd_state(weight.shape[0]),
        "scheduler": {"T_max": 100, "eta_min": 0, "base_lrs": [0.001], "last_epoch": 100},
        "best_acc": 75.3,
    }


def _moco_linear(model: nn.Module, arch: str) -> dict:
    return {
        "epoch": 90,
        "arch": arch,
        "state_dict": {"module." + k: v for k, v in model.state_dict().items()},
        "best_acc1": torch.tensor(74.6),
        "optimizer": _sgd_state(10),
    }


def _writers(sources: Callable[[str], nn.Module]) -> dict[str, tuple[str, Callable[[], dict[str, object]]]]:
    def resnet():
        return sources("resnet50")

    def deit():
        return sources("deit_base")

    def xcit():
        return sources("xcit_small")

    return {
        "resnet50": ("resnet50", lambda: {"resnet50-0676ba61.pth": resnet().state_dict()}),
        "deit_base_patch16_224": (
            "deit_base",
            lambda: {"deit_base_patch16_224-b5f2ef4d.pth": {"model": deit().state_dict()}},
        ),
        "cait_s24_224": (
            "cait_s24",
            lambda: {"S24_224.pth": {"model": {"module." + k: v for k, v in sources("cait_s24").state_dict().items()}}},
        ),
        "swin_base_patch4_window7_224": (
            "swin_base",
            lambda: {"swin_base_patch4_window7_224_22kto1k.pth": {"model": official_swin(sources("swin_base"))}},
        ),
        "xcit_small_12_p16_224": (
            "xcit_small",
            lambda: {
                "xcit_small_12_p16_224.pth": {
                    "model": official_xcit(xcit()),
                    "model_ema": official_xcit(_perturbed(ARCHITECTURES["xcit_small"](), seed=99)),
                    "optimizer": _sgd_state(4, 4),
                    "lr_scheduler": {"last_epoch": 399},
                    "epoch": 399,
                    "scaler": {"scale": 65536.0, "growth_factor": 2.0},
                    "args": _xcit_run_args(),
                }
            },
        ),
        "dino_resnet50": (
            "resnet50",
            lambda: {
                "dino_resnet50_pretrain.pth": {
                    k: v for k, v in resnet().state_dict().items() if not k.startswith("fc.")
                },
                "dino_resnet50_linearweights.pth": _dino_linear(resnet().fc.weight, resnet().fc.bias),
            },
        ),
        "dino_xcit_small_12_p16": (
            "xcit_small",
            lambda: {
                "dino_xcit_small_12_p16_pretrain.pth": official_xcit(xcit(), head=False),
                "dino_xcit_small_12_p16_linearweights.pth": _dino_linear(xcit().head.weight, xcit().head.bias),
            },
        ),
        "mocov3_resnet50": ("resnet50", lambda: {"linear-1000ep.pth.tar": _moco_linear(resnet(), "resnet50")}),
        "mocov3_vit_base": ("deit_base", lambda: {"linear-vit-b-300ep.pth.tar": _moco_linear(deit(), "vit_base")}),
    }


# Expected default CAM layer (named_modules name) and reshape transform of each seed model.
EXPECTED_LAYERS = {
    "resnet50": ("layer4.2", None, (2048, 7, 7)),
    "deit_base_patch16_224": ("blocks.11.norm1", TokensToGrid(1, (14, 14)), (768, 14, 14)),
    "cait_s24_224": ("blocks.23.norm1", TokensToGrid(0, (14, 14)), (384, 14, 14)),
    "swin_base_patch4_window7_224": ("layers.3.blocks.1.norm1", ChannelsLastToFirst(), (1024, 7, 7)),
    "xcit_small_12_p16_224": ("blocks.11", TokensToGrid(0, (14, 14)), (384, 14, 14)),
    "dino_resnet50": ("layer4.2", None, (2048, 7, 7)),
    "dino_xcit_small_12_p16": ("blocks.11", TokensToGrid(0, (14, 14)), (384, 14, 14)),
    "mocov3_resnet50": ("layer4.2", None, (2048, 7, 7)),
    "mocov3_vit_base": ("blocks.11.norm1", TokensToGrid(1, (14, 14)), (768, 14, 14)),
}


@pytest.fixture(scope="module")
def sources() -> Callable[[str], nn.Module]:
    built: dict[str, nn.Module] = {}

    def get(key: str) -> nn.Module:
        if key not in built:
            built[key] = _perturbed(ARCHITECTURES[key](), seed=len(built))
        return built[key]

    return get


@pytest.fixture(scope="module")
def official_dir(tmp_path_factory, sources):
    """One folder holding every official file, written once for the module, removed after."""
    folder = tmp_path_factory.mktemp("official")
    written: dict[str, list[str]] = {}
    for name, (_, write) in _writers(sources).items():
        files = write()
        for filename, obj in files.items():
            torch.save(obj, folder / filename)
        written[name] = sorted(files)
    yield folder, written
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def source_logits(sources, images) -> Callable[[str], torch.Tensor]:
    computed: dict[str, torch.Tensor] = {}

    def get(key: str) -> torch.Tensor:
        if key not in computed:
            with torch.inference_mode():
                computed[key] = sources(key)(images)
        return computed[key]

    return get


def test_writers_cover_every_seed_model(official_dir):
    _, written = official_dir
    assert set(written) == set(SEED_MODELS)
    for name in SEED_MODELS:
        assert written[name] == sorted(f.filename for f in get_spec(name).weights)


@pytest.mark.parametrize("name", SEED_MODELS)
def test_official_file_round_trip_gives_the_source_logits(name, official_dir, sources, source_logits, images):
    folder, _ = official_dir
    model = load_model(name, weights=folder)
    assert not model.training
    assert model.camscope_random_weights is False
    assert set(model.camscope_weights) == {f.filename for f in get_spec(name).weights}

    layer_path, reshape, map_shape = EXPECTED_LAYERS[name]
    layers, transform = get_spec(name).cam_layers(model)
    assert [layer_name(model, layer) for layer in layers] == [layer_path]
    assert transform == reshape

    outputs = []
    handle = layers[0].register_forward_hook(lambda _m, _i, out: outputs.append(out))
    with torch.inference_mode():
        got = model(images)
    handle.remove()
    expected = source_logits(_writers(sources)[name][0])
    assert expected.shape == (1, 1000) and expected.std() > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    fmap = transform(outputs[0]) if transform else outputs[0]
    assert tuple(fmap.shape) == (1, *map_shape)


def test_dino_xcit_head_is_a_linear_on_the_final_class_token(official_dir):
    folder, _ = official_dir
    linear = torch.load(folder / "dino_xcit_small_12_p16_linearweights.pth", weights_only=True)
    assert linear["state_dict"]["module.linear.weight"].shape == (1000, 384)  # no concatenated blocks


def test_a_file_for_another_model_is_refused_with_the_differences(official_dir):
    folder, _ = official_dir
    with pytest.raises(WeightsError, match=r"does not fit .*missing .*unexpected"):
        load_model("cait_s24_224", weights=folder / "xcit_small_12_p16_224.pth")


def test_a_wrong_container_is_refused(official_dir):
    folder, _ = official_dir
    with pytest.raises(WeightsError, match="expected a checkpoint dict with key 'state_dict'"):
        load_model("mocov3_vit_base", weights=folder / "deit_base_patch16_224-b5f2ef4d.pth")


def test_a_checkpoint_missing_a_tensor_is_refused(official_dir, tmp_path):
    folder, _ = official_dir
    state = torch.load(folder / "resnet50-0676ba61.pth", weights_only=True)
    del state["layer3.1.conv2.weight"]
    torch.save(state, tmp_path / "resnet50-0676ba61.pth")
    with pytest.raises(WeightsError, match=r"1 missing \(layer3\.1\.conv2\.weight\)"):
        load_model("resnet50", weights=tmp_path)


def test_a_truncated_file_is_refused(official_dir, tmp_path):
    folder, _ = official_dir
    data = (folder / "linear-1000ep.pth.tar").read_bytes()
    (tmp_path / "linear-1000ep.pth.tar").write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match="not a readable checkpoint"):
        load_model("mocov3_resnet50", weights=tmp_path)


def test_a_dino_model_needs_both_files(official_dir, tmp_path):
    folder, _ = official_dir
    shutil.copy(folder / "dino_resnet50_pretrain.pth", tmp_path)
    with pytest.raises(
        WeightsError, match=re.escape("dino_resnet50_linearweights.pth from https://dl.fbaipublicfiles.com/dino/")
    ):
        load_model("dino_resnet50", weights=tmp_path)
