"""Layer names: the one way a target layer is named, from the engine up to the CLI and sweep configs.

A layer is a module of the model or a dotted path with optional indices — ``"layer4.2"``,
``"layer4[-1]"``, ``"blocks[-1].norm1"``, ``"layers[-1].blocks[-1].norm1"``. A typo gets the closest
layer names as a hint (as torchcam does), and a module that is not part of the model is refused.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from torch import nn

from camscope.core.errors import LayerError

_PART = re.compile(r"^(?P<name>[^\[\]]*)(?P<index>(\[-?\d+\])*)$")
_INDEX = re.compile(r"\[(-?\d+)\]")


def module_path(model: nn.Module, layer: nn.Module) -> str:
    """Dotted path of ``layer`` inside ``model`` (as in ``named_modules``); LayerError if it is not part of it."""
    for name, module in model.named_modules():
        if module is layer:
            return str(name)
    raise LayerError(
        f"target layer {type(layer).__name__} is not a submodule of {type(model).__name__} (not part of the "
        "model being explained): pass layers of that model, e.g. model.layer4[-1]"
    )


def layer_names(model: nn.Module) -> list[str]:
    """Dotted paths of every submodule (the root excluded)."""
    return [name for name, _ in model.named_modules() if name]


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """The submodule ``layer`` names (a path such as ``"layer4[-1]"``), or ``layer`` itself if it is one."""
    if isinstance(layer, nn.Module):
        module_path(model, layer)
        return layer
    if not isinstance(layer, str):
        raise LayerError(f"a target layer must be an nn.Module or a dotted path, got {layer!r}")
    module = model
    walked: list[str] = []
    for part in layer.strip().split("."):
        match = _PART.match(part)
        if not match or (not match["name"] and not match["index"]):
            raise LayerError(f"cannot parse layer name {layer!r} (use e.g. 'layer4[-1]' or 'blocks.11.norm1')")
        steps: list[str | int] = [match["name"]] if match["name"] else []
        steps += [int(i) for i in _INDEX.findall(match["index"])]
        for step in steps:
            module = _child(model, module, step, walked, layer)
    return module


def resolve_layers(model: nn.Module, layers: Sequence[nn.Module | str] | nn.Module | str) -> list[nn.Module]:
    """Target layers as modules (see :func:`resolve_layer`); at least one."""
    if isinstance(layers, (nn.Module, str)):
        layers = [layers]
    resolved = [resolve_layer(model, layer) for layer in layers]
    if not resolved:
        raise LayerError("no target layers given")
    return resolved


def _child(model: nn.Module, module: nn.Module, step: str | int, walked: list[str], path: str) -> nn.Module:
    children = module._modules
    if isinstance(step, str) and step in children and children[step] is not None:
        walked.append(step)
        return children[step]  # type: ignore[return-value]
    indexable = isinstance(module, (nn.Sequential, nn.ModuleList))
    if isinstance(step, int) and indexable and -len(module) <= step < len(module):  # type: ignore[arg-type]
        index = step % len(module)  # type: ignore[arg-type]
        walked.append(list(children)[index])
        return module[index]  # type: ignore[index, no-any-return]
    where = ".".join(walked) or type(model).__name__
    canonical = _INDEX.sub(lambda m: "." + m.group(1), path).lstrip(".")  # [i] → .i, as named_modules spells it
    near = difflib.get_close_matches(canonical, layer_names(model), n=5, cutoff=0.5)
    hint = f"; near matches: {', '.join(near)}" if near else f"; its children: {', '.join(list(children)[:12])}"
    raise LayerError(f"model {type(model).__name__} has no layer {path!r}: {where} has no child {step!r}{hint}")
