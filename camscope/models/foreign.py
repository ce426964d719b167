"""Specs for models outside the zoo: any timm or torchvision classifier, or a model object.

The preprocessing comes from the published weights' own configuration (timm's pretrained_cfg,
torchvision's weights transforms), the weights file from their URL, and the target layer is
inferred from the architecture. Nothing is guessed except for a bare ``nn.Module`` nobody
describes, which gets ImageNet defaults and a note saying so.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

from torch import nn

from camscope.data.imagenet import IMAGENET_MEAN, IMAGENET_STD
from camscope.models.checkpoint import StripPrefix, TimmFilter, Unwrap
from camscope.models.layers import hf_vision_config, model_input_size
from camscope.models.preprocess import Preprocess
from camscope.models.spec import ModelSpec, TimmBuilder, TorchvisionBuilder
from camscope.models.weights import WeightsFile


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, in index order."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def timm_spec(name: str) -> ModelSpec | None:
    """Spec for a timm model name (``arch`` or ``arch.tag``), or None if timm does not know it."""
    import timm
    from timm.models import get_pretrained_cfg, model_entrypoint, split_model_name_tag

    arch, _tag = split_model_name_tag(name)
    if not timm.is_model(arch):
        return None
    cfg = get_pretrained_cfg(name)
    module = model_entrypoint(arch).__module__.rsplit(".", 1)[-1]
    weights: tuple[WeightsFile, ...] = ()
    preprocess = Preprocess.imagenet(256, 224, "bicubic")
    num_classes, class_names = 1000, None
    if cfg is not None:
        preprocess = _timm_preprocess(cfg.input_size, cfg.crop_pct, cfg.crop_mode, cfg.interpolation, cfg.mean, cfg.std)
        num_classes = cfg.num_classes or 1000
        class_names = imagenet_class_names() if num_classes == 1000 else None
        weights = _timm_weights(cfg, module)
    return ModelSpec(
        name=name,
        family=arch.split("_")[0],
        build=TimmBuilder(name),
        preprocess=preprocess,
        weights=weights,
        num_classes=num_classes,
        class_names=class_names,
        source=f"timm {name} (pretrained_cfg {cfg.tag if cfg is not None else 'none'})",
    )


def _timm_weights(cfg: object, module: str) -> tuple[WeightsFile, ...]:
    url = getattr(cfg, "url", None) or None
    hf_repo = getattr(cfg, "hf_hub_id", None) or None
    hf_name = getattr(cfg, "hf_hub_filename", None) or "model.safetensors"
    if isinstance(url, str) and url:
        filename = PurePosixPath(urlparse(url).path).name
    elif hf_repo:
        filename = f"{hf_repo.split('/')[-1]}.safetensors"
        url = f"https://huggingface.co/{hf_repo}/resolve/main/{hf_name}"
    else:
        return ()
    steps = (Unwrap(), StripPrefix("module."), TimmFilter(module))
    return (WeightsFile(filename, url, convert=steps, hf_repo=hf_repo, hf_filename=hf_name),)


def _timm_preprocess(
    input_size: tuple[int, ...],
    crop_pct: float | None,
    crop_mode: str | None,
    interpolation: str | None,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> Preprocess:
    """timm's evaluation transform: shorter side to floor(size / crop_pct), centre crop."""
    crop = (int(input_size[1]), int(input_size[2]))
    pct = crop_pct or 0.875
    scale = (math.floor(crop[0] / pct), math.floor(crop[1] / pct))
    resize: int | tuple[int, int] = scale if crop_mode == "squash" or scale[0] != scale[1] else scale[0]
    known = interpolation if interpolation in ("bilinear", "bicubic", "nearest") else "bilinear"
    return Preprocess(resize, crop, known, tuple(mean), tuple(std))


def torchvision_image_models() -> list[str]:
    """torchvision's image classifiers, segmentation models and detectors (not video, flow, quantized)."""
    import torchvision.models as tvm

    return [name for module in (tvm, tvm.segmentation, tvm.detection) for name in tvm.list_models(module=module)]


def torchvision_spec(name: str) -> ModelSpec | None:
    """Spec for a torchvision classification, segmentation or detection model name, from its DEFAULT weights."""
    import torchvision

    if name not in torchvision_image_models():
        return None
    try:
        published = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError):
        published = None
    weights: tuple[WeightsFile, ...] = ()
    preprocess = Preprocess.imagenet(256, 224, "bilinear")
    class_names = imagenet_class_names()
    notes = ""
    if published is not None:
        preprocess, notes = _torchvision_preprocess(published.transforms())
        class_names = tuple(published.meta.get("categories") or class_names)
        filename = PurePosixPath(urlparse(published.url).path).name
        weights = (WeightsFile(filename, published.url, convert=(Unwrap(), StripPrefix("module."))),)
    return ModelSpec(
        name=name,
        family=name.split("_")[0],
        build=TorchvisionBuilder(name),
        preprocess=preprocess,
        weights=weights,
        num_classes=len(class_names),
        class_names=class_names,
        source=f"torchvision {name} ({published})" if published is not None else f"torchvision {name}",
        notes=notes,
    )


def _torchvision_preprocess(t: Any) -> tuple[Preprocess, str]:
    """The published evaluation transform: classification (resize, crop), segmentation (resize only),
    detection (none: the detector resizes and normalises inside its own forward)."""
    if hasattr(t, "crop_size"):
        crop = (int(t.crop_size[0]), int(t.crop_size[0]))
        return Preprocess(int(t.resize_size[0]), crop, t.interpolation.value, tuple(t.mean), tuple(t.std)), ""
    if hasattr(t, "resize_size"):
        side = int(t.resize_size[0])
        return Preprocess(side, (side, side), t.interpolation.value, tuple(t.mean), tuple(t.std)), (
            f"segmentation: the published transform resizes the shorter side to {side}; camscope also "
            "centre-crops it square"
        )
    return Preprocess(DETECTION_SIDE, (DETECTION_SIDE, DETECTION_SIDE), "bilinear", (0.0,) * 3, (1.0,) * 3), (
        "detection: the detector resizes and normalises inside its forward; camscope hands it a "
        f"{DETECTION_SIDE}x{DETECTION_SIDE} centre crop in [0, 1]"
    )


#: the square side camscope feeds a torchvision detector (its own transform then resizes it to min_size)
DETECTION_SIDE = 800


def module_spec(model: nn.Module) -> ModelSpec:
    """Spec describing a model object: its camscope spec, its timm config, or ImageNet defaults."""
    spec = getattr(model, "camscope_spec", None)
    if isinstance(spec, ModelSpec):
        return spec
    cfg = getattr(model, "pretrained_cfg", None)
    name = type(model).__name__
    if isinstance(cfg, dict) and cfg.get("input_size"):
        hw = model_input_size(model)
        preprocess = _timm_preprocess(
            (3, *hw),
            cfg.get("crop_pct"),
            cfg.get("crop_mode"),
            cfg.get("interpolation"),
            cfg.get("mean", (0.485, 0.456, 0.406)),
            cfg.get("std", (0.229, 0.224, 0.225)),
        )
        arch = cfg.get("architecture") or name
        num_classes = int(getattr(model, "num_classes", cfg.get("num_classes", 1000)) or 0)
        return ModelSpec(
            name=arch,
            family=arch.split("_")[0],
            build=TimmBuilder(arch),
            preprocess=preprocess,
            num_classes=num_classes,
            class_names=imagenet_class_names() if num_classes == 1000 else None,
            source=f"timm pretrained_cfg of the model ({cfg.get('tag') or 'untagged'})",
        )
    transform = getattr(model, "transform", None)
    min_size = getattr(transform, "min_size", None)
    if isinstance(min_size, (tuple, list)) and min_size and hasattr(transform, "image_mean"):
        side = int(min_size[-1])  # a torchvision detector: it resizes and normalises inside its forward
        return ModelSpec(
            name=name,
            family=name,
            build=lambda: model,
            preprocess=Preprocess(side, (side, side), "bilinear", (0.0,) * 3, (1.0,) * 3),
            notes=f"detector: a {side}x{side} centre crop in [0, 1] (its own transform resizes and normalises)",
        )
    hw = model_input_size(model)
    if hf_vision_config(model) is not None:
        return _hf_spec(model, name, hw)
    return ModelSpec(
        name=name,
        family=name,
        build=lambda: model,
        preprocess=Preprocess(hw[0] * 8 // 7, hw, "bilinear"),
        notes="preprocessing unknown for this model object: ImageNet defaults (resize 256 bilinear, crop 224)",
    )


#: the file ``save_pretrained`` of a transformers image processor writes beside the model's weights
HF_PROCESSOR_FILE = "preprocessor_config.json"


def _hf_spec(model: nn.Module, name: str, hw: tuple[int, int]) -> ModelSpec:
    """A transformers image model: the input size from its config; the normalisation and the resize / crop
    as the model describes them (:func:`hf_normalisation`, :func:`hf_geometry`), else ImageNet's
    normalisation with a warning (a ViT processor's is 0.5/0.5) and a 256/224-style resize and crop."""
    processor = _hf_processor(model)  # read once: normalisation and geometry both come from it
    found = hf_normalisation(model, processor)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    if found is None:
        from camscope.core.errors import warn

        source = (
            f"ImageNet mean/std assumed: the model's config has no image_mean/image_std and no {HF_PROCESSOR_FILE} "
            "lies beside it"
        )
        warn(
            f"{name}: {source}; its own image processor may normalise otherwise (ViT's uses 0.5/0.5), so "
            "maps and scores may be of a shifted input: set config.image_mean / config.image_std"
        )
    else:
        mean, std, source = found
    geometry = hf_geometry(processor, hw)
    if geometry is None:
        resize: int | tuple[int, int] = hw[0] * 8 // 7
        crop, interpolation = hw, "bilinear"
        shape = f"resize {resize} bilinear and crop {hw[0]}x{hw[1]} assumed"
    else:
        resize, crop, interpolation, shape = geometry
    return ModelSpec(
        name=name,
        family=name,
        build=lambda: model,
        preprocess=Preprocess(resize, crop, interpolation, mean, std),
        source=f"transformers model ({source})",
        notes=f"transformers model: {shape}; {source}",
    )


def _hf_processor(model: nn.Module) -> tuple[dict[str, Any], str] | None:
    """The image processor's settings saved beside a transformers model (the local folder it was loaded
    from, ``config._name_or_path``; nothing is fetched) and the file's path; None where there is none."""
    import json
    from pathlib import Path

    config = getattr(model, "config", None)
    folder = str(getattr(config, "_name_or_path", "") or "")
    path = Path(folder) / HF_PROCESSOR_FILE if folder else None
    if path is None or not path.is_file():
        return None
    try:
        processor = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        from camscope.core.errors import InputError

        raise InputError(f"{path} is not a readable image-processor config: {exc}") from None
    return (processor, str(path)) if isinstance(processor, dict) else None


def hf_normalisation(
    model: nn.Module, processor: tuple[dict[str, Any], str] | None
) -> tuple[tuple[float, ...], tuple[float, ...], str] | None:
    """``(mean, std, where from)`` of a transformers image model, as the model itself describes it:
    ``image_mean`` / ``image_std`` on its config, else its saved image processor's. None when neither says."""
    config = getattr(model, "config", None)
    mean, std = getattr(config, "image_mean", None), getattr(config, "image_std", None)
    if mean is not None and std is not None:
        return _stats(mean, std, "config.image_mean / image_std")
    if processor is None:
        return None
    settings, path = processor
    if settings.get("do_normalize") is False:
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), f"{path} (do_normalize false)"
    if settings.get("image_mean") is None or settings.get("image_std") is None:
        return None
    return _stats(settings["image_mean"], settings["image_std"], path)


# PIL's resampling codes, as an image processor stores them
_HF_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}
# ConvNeXt's processor (also ResNet's) resizes to shortest_edge / crop_pct and crops below this size
_CROP_PCT_BELOW = 384


def _hf_side(size: Any) -> tuple[int, int] | int | None:
    """An image processor's ``size`` / ``crop_size``: ``(h, w)`` for height and width (or a bare int, as
    older files store a square), the int of a ``shortest_edge``; None for anything else (``longest_edge``)."""
    if isinstance(size, int) and size > 0:
        return (size, size)
    if isinstance(size, dict):
        if isinstance(size.get("height"), int) and isinstance(size.get("width"), int):
            return (int(size["height"]), int(size["width"]))
        if isinstance(size.get("shortest_edge"), int) and len(size) == 1:
            return int(size["shortest_edge"])
    return None


def hf_geometry(
    processor: tuple[dict[str, Any], str] | None, hw: tuple[int, int]
) -> tuple[int | tuple[int, int], tuple[int, int], str, str] | None:
    """``(resize, crop, interpolation, description)`` from the image processor saved beside a transformers
    model (:func:`_hf_processor`: its settings and path), as the processor applies them: resize to ``size``,
    then a centre crop to ``crop_size`` where ``do_center_crop`` (ConvNeXt's ``crop_pct``: shortest edge /
    crop_pct, then the crop). None where there is no processor file, or its geometry cannot end at the
    model's ``hw`` input (then the caller assumes)."""
    if processor is None:
        return None
    settings, path = processor
    interpolation = _HF_RESAMPLE.get(settings.get("resample", 2), "bilinear")
    size = _hf_side(settings.get("size")) if settings.get("do_resize", True) else None
    resize: int | tuple[int, int] | None = None
    crop: tuple[int, int] | None = None
    if isinstance(size, int) and isinstance(settings.get("crop_pct"), (int, float)):
        if size < _CROP_PCT_BELOW:
            resize, crop = int(size / float(settings["crop_pct"])), (size, size)
        else:
            resize = crop = (size, size)
    elif size is not None:
        resize = size
        cropped = _hf_side(settings.get("crop_size")) if settings.get("do_center_crop") else None
        crop = cropped if isinstance(cropped, tuple) else (size if isinstance(size, tuple) else None)
    if resize is None or crop != tuple(hw):
        return None
    shown = f"{resize[0]}x{resize[1]}" if isinstance(resize, tuple) else f"shorter side {resize}"
    return resize, crop, interpolation, f"resize {shown} {interpolation} and crop {crop[0]}x{crop[1]} from {path}"


def _stats(mean: Any, std: Any, source: str) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """Per-channel mean/std (a single value is used for every channel); a bad value is one clear error."""
    from camscope.core.errors import InputError

    try:
        m = [float(v) for v in (mean if isinstance(mean, (list, tuple)) else [mean] * 3)]
        s = [float(v) for v in (std if isinstance(std, (list, tuple)) else [std] * 3)]
    except (TypeError, ValueError):
        raise InputError(f"{source}: image_mean / image_std must be numbers, got {mean!r} / {std!r}") from None
    if len(m) != 3 or len(s) != 3 or any(v <= 0 for v in s):
        raise InputError(f"{source}: image_mean / image_std need 3 values each and a positive std, got {m} / {s}")
    return tuple(m), tuple(s), source
