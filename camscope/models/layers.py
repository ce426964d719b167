"""Target layers: infer them for any classifier (names are resolved by :mod:`camscope.core.layer_paths`).

A CAM needs the last layer whose output is still a spatial map the prediction depends on. For
CNNs that is the last spatial stage; for transformers it is the input of the last token-mixing
block (its first norm), because after the last block only the class token reaches the head and
patch tokens get no gradient. Both are found by running the model once on a blank image and
watching what each module outputs, so the rule works on architectures nobody listed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from camscope.core.capture import ReshapeTransform, eval_mode
from camscope.core.errors import LayerError
from camscope.core.layer_paths import module_path, resolve_layer
from camscope.models.reshape import FeaturePyramidToGrid, reshape_for_shape

# Modules whose output is never a good CAM target even when it is spatial.
_PASSTHROUGH = (nn.Identity, nn.Dropout, nn.Dropout2d, nn.Flatten)
_POOLING = (
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AvgPool2d,
    nn.MaxPool2d,
)
# Class-attention stages (CaiT's blocks_token_only, XCiT's cls_attn_blocks) only update the class
# token; the trunk before them is the patch representation.
_CLASS_ATTENTION = ("token_only", "cls_attn")


def model_input_size(model: nn.Module, default: int = 224) -> tuple[int, int]:
    """The (H, W) the model is built for: its spec, its patch embedding, timm's config, or 224."""
    spec = getattr(model, "camscope_spec", None)
    if spec is not None:
        return int(spec.input_size[1]), int(spec.input_size[2])
    patch_embed = getattr(model, "patch_embed", None)
    img_size = getattr(patch_embed, "img_size", None)
    if img_size is not None:
        return _pair(img_size)
    config = hf_vision_config(model)
    if config is not None:
        return _pair(config.image_size)
    image_size = getattr(model, "image_size", None)
    if isinstance(image_size, int):  # torchvision ViT
        return _pair(image_size)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if cfg.get("input_size"):
        return _pair(cfg["input_size"][1:])
    return (default, default)


def hf_vision_config(model: nn.Module) -> Any | None:
    """A Hugging Face model's config if it describes an image model (``image_size``, ``patch_size``);
    None for a model that is not from transformers. A transformers model without a patch grid
    (a text model, say) is refused by name: nothing in it is a spatial map."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "model_type") or not hasattr(config, "to_dict"):
        return None
    if getattr(config, "image_size", None) is None or getattr(config, "patch_size", None) is None:
        raise LayerError(
            f"{type(model).__name__} (transformers model_type {config.model_type!r}) has no patch grid: its config "
            "has no image_size / patch_size, so no layer of it is a spatial map; explain an image model"
        )
    return config


def _hf_prefix_tokens(config: Any) -> int:
    """Tokens before the patches in a transformers vision model: class token (none for Swin-like
    models), DeiT's distillation token, DINOv2's registers."""
    if str(config.model_type).startswith(("swin", "donut", "maskformer")):
        return 0
    distillation = 1 if config.model_type == "deit" else 0
    return 1 + distillation + int(getattr(config, "num_register_tokens", 0) or 0)


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


@dataclass
class _Seen:
    order: int
    calls: int
    shape: tuple[int, ...] | None
    output: str = ""  # the output's type, where it is no tensor
    named: bool = False  # named feature maps (a dict of tensors: a detector's pyramid)


class _Enough(Exception):
    """Raised from a hook to stop a probe once every requested module has produced its output."""


def probe(model: nn.Module, input_hw: tuple[int, int], modules: dict[str, nn.Module] | None = None) -> dict[str, _Seen]:
    """Run ``model`` once on a blank image and record each module's output shape and call order.

    With ``modules`` given, only those are watched and the forward pass stops as soon as all of
    them have run. Every module's train/eval flag is restored afterwards; no gradients are computed.
    """
    stop_early = modules is not None
    modules = dict(model.named_modules()) if modules is None else modules
    seen: dict[str, _Seen] = {}
    counter = [0]

    def hook(name: str) -> Callable[[nn.Module, object, object], None]:
        def record(_module: nn.Module, _inputs: object, output: object) -> None:
            tensor = output[0] if isinstance(output, (tuple, list)) and output else output
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else None
            maps = list(output.values()) if isinstance(output, Mapping) else []
            named = bool(maps) and all(isinstance(value, torch.Tensor) for value in maps)
            counter[0] += 1
            calls = seen[name].calls + 1 if name in seen else 1
            kind = "" if shape is not None else type(output).__name__
            seen[name] = _Seen(order=counter[0], calls=calls, shape=shape, output=kind, named=named)
            if stop_early and len(seen) == len(modules):
                raise _Enough

        return record

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    try:
        hooks = [(module, hook(name)) for name, module in modules.items()]
        with eval_mode(model, hooks), torch.inference_mode():
            model(torch.zeros(1, 3, *input_hw, device=device, dtype=dtype))
    except _Enough:
        pass
    return seen


def reshape_for_layer(
    model: nn.Module, layer: nn.Module, input_hw: tuple[int, int] | None = None
) -> ReshapeTransform | None:
    """Reshape transform for ``layer``, derived from the output it really produces."""
    input_hw = input_hw or model_input_size(model)
    name = module_path(model, layer)
    seen = probe(model, input_hw, {name: layer}).get(name)
    if seen is None:
        raise LayerError(f"layer {name!r} is not used in the forward pass of {type(model).__name__}")
    if seen.named:  # a detector's pyramid: its levels joined, as infer_cam_layers picks it
        return FeaturePyramidToGrid()
    if seen.shape is None:
        raise LayerError(f"layer {name!r} outputs a {seen.output}, neither a tensor nor named feature maps")
    return reshape_for_shape(seen.shape, input_hw, _channels_last_hint(model), name, _prefix_tokens(model))


def token_reshape(
    model: nn.Module, shape: tuple[int, ...], input_hw: tuple[int, int], name: str = "layer"
) -> ReshapeTransform | None:
    """Reshape transform for an output of ``shape`` seen at ``input_hw``, from the model's own token layout:
    what a CAM called on a token layer without a reshape transform uses (pytorch-grad-cam needs one by hand)."""
    return reshape_for_shape(shape, input_hw, _channels_last_hint(model), name, _prefix_tokens(model))


def cam_layers_from_names(
    model: nn.Module, names: Sequence[nn.Module | str], input_hw: tuple[int, int] | None = None
) -> tuple[list[nn.Module], ReshapeTransform | None]:
    """Resolve ``names`` and derive one reshape transform that fits all of them."""
    layers = [resolve_layer(model, name) for name in names]
    transforms = {reshape_for_layer(model, layer, input_hw) for layer in layers}
    if len(transforms) > 1:
        raise LayerError(
            f"target layers {list(names)} need different reshape transforms ({transforms}); explain them one at a time"
        )
    return layers, transforms.pop()


def infer_cam_layers(
    model: nn.Module, input_hw: tuple[int, int] | None = None
) -> tuple[list[nn.Module], ReshapeTransform | None]:
    """Target layer and reshape transform for any classifier (timm, torchvision, or your own).

    Transformers (ViT, DeiT, CaiT, XCiT, Swin, torchvision ViT/Swin, Hugging Face ViT/DeiT/BEiT/
    DINOv2/Swin): the first norm of the last token-mixing block outside class-attention stages. CNNs
    (ResNet, ConvNeXt, EfficientNet, MobileNet, RegNet, DenseNet, VGG …): the last module, run once,
    whose output is still a spatial map (pooling and pass-through modules excluded). Models with a
    ``backbone`` (torchvision segmentation): that rule inside the backbone; a detector whose backbone
    ends in a feature pyramid (``backbone.fpn``): the backbone, its levels joined.
    """
    input_hw = input_hw or model_input_size(model)
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, nn.Module) and isinstance(getattr(backbone, "fpn", None), nn.Module):
        # a detector's feature pyramid: every level, joined (pytorch-grad-cam's Faster R-CNN tutorial)
        return [backbone], FeaturePyramidToGrid()
    seen = probe(model, input_hw)
    if isinstance(backbone, nn.Module):
        # a dense-prediction model (torchvision segmentation, ...): the head after the backbone is the
        # per-pixel classifier, whose output is spatial too but already the prediction
        seen = {name: entry for name, entry in seen.items() if name.startswith("backbone.")}
    name = _last_token_block_norm(model, seen, input_hw) or _last_spatial_module(model, seen, input_hw)
    if name is None:
        raise LayerError(f"could not find a spatial layer in {type(model).__name__}; pass target layers explicitly")
    layer = model.get_submodule(name)
    shape = seen[name].shape
    assert shape is not None
    reshape = reshape_for_shape(shape, input_hw, _channels_last_hint(model), name, _prefix_tokens(model))
    return [layer], reshape


def _prefix_tokens(model: nn.Module) -> int | None:
    """Class / distillation / register tokens in front of the patch tokens, as the model says (timm's
    ``num_prefix_tokens``, a transformers model's config)."""
    count = getattr(model, "num_prefix_tokens", None)
    if isinstance(count, int):
        return count
    config = hf_vision_config(model)
    return None if config is None else _hf_prefix_tokens(config)


def _channels_last_hint(model: nn.Module) -> bool:
    return getattr(model, "output_fmt", None) == "NHWC"


def _spatial(shape: tuple[int, ...] | None, input_hw: tuple[int, int], hint: bool) -> str | None:
    """'tokens', 'nhwc', 'nchw' or None for the layout of an output of ``shape``."""
    if shape is None:
        return None
    try:
        transform = reshape_for_shape(shape, input_hw, hint)
    except LayerError:
        return None
    if len(shape) == 3:
        return "tokens"
    if transform is None:
        return "nchw" if shape[2] * shape[3] > 1 else None
    return "nhwc" if shape[1] * shape[2] > 1 else None


def _is_norm(name: str, module: nn.Module) -> bool:
    return isinstance(module, (nn.LayerNorm, nn.GroupNorm)) or name.startswith(("norm", "ln"))


def _last_token_block_norm(model: nn.Module, seen: dict[str, _Seen], input_hw: tuple[int, int]) -> str | None:
    hint = _channels_last_hint(model)
    best: tuple[int, str] | None = None
    for name, module in model.named_modules():
        if not name or name not in seen or seen[name].calls != 1 or any(k in name for k in _CLASS_ATTENTION):
            continue
        children = list(module.named_children())
        if not any("attn" in child or "attention" in child for child, _ in children):
            continue
        norms = [f"{name}.{child}" for child, sub in children if _is_norm(child, sub)]
        norms = [n for n in norms if n in seen and seen[n].calls == 1]
        if not norms or _spatial(seen[norms[0]].shape, input_hw, hint) not in ("tokens", "nhwc"):
            continue
        if best is None or seen[name].order > best[0]:
            best = (seen[name].order, norms[0])
    return best[1] if best else None


def _last_spatial_module(model: nn.Module, seen: dict[str, _Seen], input_hw: tuple[int, int]) -> str | None:
    hint = _channels_last_hint(model)
    best: tuple[int, str] | None = None
    for name, module in model.named_modules():
        if not name or name not in seen or seen[name].calls != 1 or isinstance(module, _PASSTHROUGH + _POOLING):
            continue
        if _spatial(seen[name].shape, input_hw, hint) not in ("nchw", "nhwc"):
            continue
        if best is None or seen[name].order > best[0]:
            best = (seen[name].order, name)
    return best[1] if best else None
