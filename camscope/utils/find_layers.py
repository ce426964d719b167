"""``pytorch_grad_cam.utils.find_layers`` under camscope's name.

Walk a model's module tree to find or replace layers. camscope's methods take layers as modules or dotted
paths (``"layer4.1"``, resolved with near-match hints); these functions are for code that collects layers
by type or predicate, or swaps modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn


def replace_layer_recursive(model: nn.Module, old_layer: nn.Module, new_layer: nn.Module) -> bool:
    """Put ``new_layer`` in the place of the first module equal to ``old_layer``; True if one was found."""
    for name, layer in model._modules.items():
        if layer is None:
            continue
        if layer == old_layer:
            model._modules[name] = new_layer
            return True
        if replace_layer_recursive(layer, old_layer, new_layer):
            return True
    return False


def replace_all_layer_type_recursive(
    model: nn.Module, old_layer_type: type | tuple[type, ...], new_layer: nn.Module
) -> None:
    """Put ``new_layer`` (one shared instance) in the place of every module of ``old_layer_type``."""
    for name, layer in model._modules.items():
        if layer is None:
            continue
        if isinstance(layer, old_layer_type):
            model._modules[name] = new_layer
        replace_all_layer_type_recursive(layer, old_layer_type, new_layer)


def find_layer_types_recursive(model: nn.Module, layer_types: Iterable[type]) -> list[nn.Module]:
    """Every module whose type is exactly one of ``layer_types``, depth first."""
    types = tuple(layer_types)
    return find_layer_predicate_recursive(model, lambda layer: type(layer) in types)


def find_layer_predicate_recursive(model: nn.Module, predicate: Callable[[nn.Module], bool]) -> list[nn.Module]:
    """Every module (below ``model``) for which ``predicate`` holds, depth first."""
    found = []
    for layer in model._modules.values():
        if layer is None:
            continue
        if predicate(layer):
            found.append(layer)
        found.extend(find_layer_predicate_recursive(layer, predicate))
    return found
