"""``get_spec`` and ``load_model``: one path from a name to an evaluated model with its weights.

Every model, zoo or not, goes through the same steps: spec → build the architecture → locate each
weights file → read it safely → run its conversion steps → strict load → eval mode. Random
weights only on request, and then the model carries ``camscope_random_weights = True``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from torch import nn

from camscope.core.errors import WeightsError
from camscope.models.backbone import mark_model, strip_classifier
from camscope.models.checkpoint import convert, load_strict, read_checkpoint
from camscope.models.foreign import module_spec, timm_spec, torchvision_spec
from camscope.models.spec import ModelSpec, registered_spec, unknown_model
from camscope.models.weights import Location, download, locate, missing_message


class RandomWeightsWarning(UserWarning):
    """A model runs with random weights: its explanations describe no trained model."""


def get_spec(name_or_model: str | nn.Module) -> ModelSpec:
    """The spec of a zoo name, a timm or torchvision model name, or a model object.

    Zoo names come first, then timm, then torchvision; ``timm:NAME`` or ``torchvision:NAME``
    picks the library explicitly (``resnet18`` exists in both).
    """
    if isinstance(name_or_model, nn.Module):
        return module_spec(name_or_model)
    name = str(name_or_model)
    library, _, bare = name.partition(":")
    if library == "timm" and bare:
        spec = timm_spec(bare)
    elif library in ("torchvision", "tv") and bare:
        spec = torchvision_spec(bare)
    else:
        spec = registered_spec(name) or timm_spec(name) or torchvision_spec(name)
    if spec is None:
        raise unknown_model(name)
    return spec


def locate_weights(spec: ModelSpec, weights: str | os.PathLike[str] | None = None) -> list[Location]:
    """Where each weights file of ``spec`` is (or is not)."""
    single = len(spec.weights) == 1
    return [locate(file, weights, single=single) for file in spec.weights]


def resolve_weights(
    spec: ModelSpec, weights: str | os.PathLike[str] | None = None, allow_download: bool = False
) -> list[Location]:
    """Locations of all weights files of ``spec``; raises :class:`WeightsError` if any is missing."""
    if not spec.weights:
        if weights is not None and Path(weights).is_file():
            raise WeightsError(
                f"{spec.name}: no published weights format is known, so {weights} cannot be mapped; "
                "load it yourself with model.load_state_dict"
            )
        raise WeightsError(
            f"{spec.name}: no published weights are known for this model; "
            "train it or pass random_weights=True for a wiring test"
        )
    locations = locate_weights(spec, weights)
    if allow_download and weights is None:
        locations = [loc if loc.found else _downloaded(loc) for loc in locations]
    missing = [loc for loc in locations if not loc.found]
    if missing:
        raise WeightsError(missing_message(spec.name, missing))
    return locations


def _downloaded(location: Location) -> Location:
    path = download(location.file)
    return Location(location.file, path, "downloaded to torch.hub cache", location.searched)


def load_model(
    name: str,
    weights: str | os.PathLike[str] | None = None,
    random_weights: bool = False,
    download: bool = False,
    head: bool = True,
) -> nn.Module:
    """Build ``name`` (zoo, timm or torchvision) with its published weights, in eval mode.

    ``weights`` is a file or a folder holding the official file(s); without it the files are
    searched in ``$CAMSCOPE_WEIGHTS``, ``./pretrained_weights/``, the package and the caches.
    ``download=True`` fetches missing files into the torch.hub cache. ``random_weights=True``
    skips weights entirely and marks the model ``camscope_random_weights = True``.
    ``head=False`` returns the backbone: the classifier is replaced by the identity, so the model
    outputs the pooled embedding the head read (a linear-probe file, as DINO's, is then not needed).
    """
    spec = get_spec(name)
    if not head:
        spec = spec.backbone()
    if random_weights and weights is not None:
        raise WeightsError("pass either weights or random_weights=True, not both")
    locations = [] if random_weights else resolve_weights(spec, weights, allow_download=download)
    model = spec.build()
    if random_weights:
        warnings.warn(
            f"{spec.name} has RANDOM weights (random_weights=True): its maps explain no trained model",
            RandomWeightsWarning,
            stacklevel=2,
        )
    else:
        state: dict[str, Any] = {}
        for location in locations:
            assert location.path is not None
            source = f"{location.path.name} ({location.file.role})"
            part = convert(read_checkpoint(location.path), location.file.convert, model, source)
            clash = sorted(state.keys() & part.keys())
            if clash:
                raise WeightsError(f"{spec.name}: {source} repeats keys already given by another file: {clash[:4]}")
            state.update(part)
        files = " + ".join(loc.path.name for loc in locations if loc.path is not None)
        if not head:
            removed = strip_classifier(model)
            state = {k: v for k, v in state.items() if k not in removed}
        load_strict(model, state, f"{spec.name}: {files}")
    if not head and not getattr(model, "camscope_backbone", False):
        strip_classifier(model)
    model.eval()
    mark_model(
        model,
        camscope_spec=spec,
        camscope_name=spec.name,
        camscope_random_weights=random_weights,
        camscope_weights={loc.file.filename: str(loc.path) for loc in locations},
    )
    return model
