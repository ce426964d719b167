"""ModelSpec: everything camscope needs to know about one model, and the registry of specs.

A spec names how to build the architecture (never with downloaded weights), the weights files
and how they map onto it, the evaluation transform, whether training was supervised, and the
default CAM target layers. The seed zoo (:mod:`camscope.models.zoo`) and the packaged mini zoo
are both just registered specs.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from camscope.core.capture import ReshapeTransform
from camscope.core.errors import NameTakenError, TargetError, UnknownNameError
from camscope.models.layers import cam_layers_from_names, infer_cam_layers
from camscope.models.preprocess import Preprocess
from camscope.models.weights import WeightsFile


@dataclass(frozen=True)
class TimmBuilder:
    """``timm.create_model(arch, pretrained=False, **kwargs)``."""

    arch: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __call__(self) -> nn.Module:
        import timm

        return timm.create_model(self.arch, pretrained=False, **dict(self.kwargs))

    def __str__(self) -> str:
        return f"timm {self.arch}"


@dataclass(frozen=True)
class TorchvisionBuilder:
    """``torchvision.models.get_model(arch, weights=None, **kwargs)``."""

    arch: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __call__(self) -> nn.Module:
        import inspect

        import torchvision

        kwargs = dict(self.kwargs)
        builder = torchvision.models.get_model_builder(self.arch)
        if "weights_backbone" in inspect.signature(builder).parameters:
            kwargs.setdefault("weights_backbone", None)  # segmentation / detection: never fetch a backbone
        model: nn.Module = torchvision.models.get_model(self.arch, weights=None, **kwargs)
        return model

    def __str__(self) -> str:
        return f"torchvision {self.arch}"


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """One model: architecture, weights, preprocessing, training regime, default CAM layers.

    ``target_layers`` are names for :func:`~camscope.models.layers.resolve_layer`; empty means
    "infer from the architecture". ``training`` is ``"supervised"`` or ``"self-supervised"``,
    with the method (DINO, MoCo v3) in ``ssl_method`` — or, for a mini model pre-trained on views the
    generator paired, ``"generator-paired"`` (its own group in every comparison).
    """

    name: str
    family: str
    build: Callable[[], nn.Module]
    preprocess: Preprocess
    weights: tuple[WeightsFile, ...] = ()
    target_layers: tuple[str, ...] = ()
    training: str = "supervised"
    ssl_method: str | None = None
    num_classes: int = 1000
    class_names: tuple[str, ...] | None = None
    source: str = ""
    notes: str = ""
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def input_size(self) -> tuple[int, int, int]:
        return self.preprocess.input_size

    @property
    def mean(self) -> tuple[float, ...]:
        return self.preprocess.mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.preprocess.std

    @property
    def supervised(self) -> bool:
        return self.training == "supervised"

    @property
    def training_label(self) -> str:
        return f"{self.training} ({self.ssl_method})" if self.ssl_method else self.training

    def backbone(self) -> ModelSpec:
        """This spec without its linear-head file: what ``load_model(name, head=False)`` needs (a
        self-supervised backbone explained by its embedding has no use for the probe trained on it)."""
        return replace(self, weights=tuple(f for f in self.weights if f.role != "linear head"))

    def cam_layers(self, model: nn.Module) -> tuple[list[nn.Module], ReshapeTransform | None]:
        """Default target layers of ``model`` and the reshape transform their output needs."""
        input_hw = self.input_size[1:]
        if self.target_layers:
            return cam_layers_from_names(model, self.target_layers, input_hw)
        return infer_cam_layers(model, input_hw)

    def parse_class(self, label: str | int) -> int:
        """A class given by index (``7``, ``"7"``) or by name (case-insensitive), checked against this
        model's classes: one way for the CLI and the app to read a user's target."""
        text = str(label).strip()
        if text.lstrip("-").isdigit():
            index = int(text)
            if not 0 <= index < self.num_classes:
                raise TargetError(f"class {index} is out of range for {self.name} (0..{self.num_classes - 1})")
            return index
        names = [n.lower() for n in self.class_names or ()]
        if text.lower() in names:
            return names.index(text.lower())
        if not names:
            raise TargetError(
                f"{text!r} is not a class index, and {self.name} has no class names: give an index "
                f"0..{self.num_classes - 1}"
            )
        near = difflib.get_close_matches(text.lower(), names, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise TargetError(f"{text!r} is not a class index or a class name of {self.name}{hint}")

    def num_params(self) -> int:
        """Parameter count, from an instance built on the meta device (no memory, no weights)."""
        if "num_params" not in self._cache:
            with torch.device("meta"):
                model = self.build()
            self._cache["num_params"] = sum(p.numel() for p in model.parameters())
        return int(self._cache["num_params"])


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec, overwrite: bool = False) -> ModelSpec:
    """Add ``spec`` to the zoo (``camscope zoo``, ``load_model(spec.name)``)."""
    if spec.name in _REGISTRY and not overwrite:
        raise NameTakenError(f"model {spec.name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_model(name: str) -> None:
    _REGISTRY.pop(name, None)


def list_models() -> list[str]:
    """Names of the registered zoo models, in registration order."""
    return list(_REGISTRY)


def registered_spec(name: str) -> ModelSpec | None:
    return _REGISTRY.get(name)


def _library_names() -> list[str]:
    """timm and torchvision model names, for close-match hints (a typo of ``deit_small_patch16_224``)."""
    names: list[str] = []
    try:
        import timm

        names += timm.list_models()
    except ImportError:  # pragma: no cover - timm is a dependency
        pass
    try:
        from camscope.models.foreign import torchvision_image_models

        names += torchvision_image_models()
    except ImportError:  # pragma: no cover - torchvision is a dependency
        pass
    return names


def unknown_model(name: str) -> UnknownNameError:
    bare = name.partition(":")[2] or name
    candidates = list(dict.fromkeys([*_REGISTRY, *_library_names()]))
    near = difflib.get_close_matches(bare, candidates, n=4, cutoff=0.6)
    hint = f"; did you mean {', '.join(near)}?" if near else f"; zoo models: {', '.join(_REGISTRY)}"
    return UnknownNameError(
        f"unknown model {name!r}: not in the zoo, timm or torchvision{hint} (`camscope zoo` lists the zoo)"
    )
