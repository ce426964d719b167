"""Deep Feature Factorization (Collins, Achanta & Süsstrunk, ECCV 2018): concepts of a layer by NMF.

The activations of a layer, all images and positions together, form a (channels × positions) matrix
A ≥ 0 (each channel shifted by its minimum, so token layers work too); non-negative matrix factorization
A ≈ W H gives ``n_components`` concepts: W's columns are concept embeddings in channel space (the
shift added back, so a classifier head can score them) and H's rows say where each concept is, one
heat map per image. As in pytorch-grad-cam 1.5.7: scikit-learn's ``NMF(init="random", random_state=0)``
(so the concepts are reproducible), maps min-max scaled and resized to the input.

scikit-learn is needed (``pip install camscope[compat]``); it is imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from camscope.core.capture import LayerCapture, ReshapeTransform, eval_mode, model_device, resolve_layers, to_grid
from camscope.core.errors import CamscopeError
from camscope.methods.base import resize_maps, scale_per_image
from camscope.viz import create_labels_legend, show_factorization_on_image


def dff(activations: np.ndarray, n_components: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """NMF of (N, C, h, w) activations: concepts (C, n_components) and maps (N, n_components, h, w)."""
    try:
        from sklearn.decomposition import NMF
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CamscopeError("Deep Feature Factorization needs scikit-learn: pip install camscope[compat]") from exc
    n, c, h, w = activations.shape
    matrix = np.nan_to_num(activations.transpose(1, 0, 2, 3)).reshape(c, -1)
    offset = matrix.min(axis=-1)
    nmf = NMF(n_components=n_components, init="random", random_state=0)
    weights = nmf.fit_transform(matrix - offset[:, None])
    concepts = weights + offset[:, None]
    explanations = nmf.components_.reshape(n_components, n, h, w).transpose(1, 0, 2, 3)
    return concepts, explanations


class DeepFeatureFactorization:
    """``DeepFeatureFactorization(model, target_layer)(input_tensor, n_components)`` →
    ``(concepts, explanations)``, or ``(concepts, explanations, concept_outputs)`` when
    ``computation_on_concepts`` (e.g. the classifier head) is given: its output for each concept embedding.

    ``explanations`` is a list with one float32 (n_components, H, W) array per image, each map in [0, 1].
    """

    def __init__(
        self,
        model: nn.Module,
        target_layer: nn.Module | str,
        reshape_transform: ReshapeTransform | None = None,
        computation_on_concepts: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.model = model
        self.target_layer = resolve_layers(model, [target_layer])[0]
        self.reshape_transform = reshape_transform
        self.computation_on_concepts = computation_on_concepts

    def __enter__(self) -> DeepFeatureFactorization:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, input_tensor: torch.Tensor, n_components: int = 16) -> tuple[Any, ...]:
        height, width = input_tensor.shape[-2:]
        with (
            eval_mode(self.model),
            torch.inference_mode(),
            LayerCapture(self.model, [self.target_layer]) as capture,
        ):
            capture.forward(input_tensor.to(model_device(self.model)))
            output = capture.recorded()[0]
            grid = to_grid(output, self.reshape_transform, capture.names[0])
        concepts, explanations = dff(grid.float().cpu().numpy(), n_components=n_components)
        maps = torch.from_numpy(np.float32(explanations))
        per_image = [resize_maps(scale_per_image(image_maps), (height, width)).numpy() for image_maps in maps]
        if self.computation_on_concepts is None:
            return concepts, per_image
        with torch.inference_mode():
            embeddings = torch.from_numpy(np.float32(concepts).T)
            concept_outputs = self.computation_on_concepts(embeddings).cpu().numpy()
        return concepts, per_image, concept_outputs


def run_dff_on_image(
    model: nn.Module,
    target_layer: nn.Module | str,
    classifier: Callable[[torch.Tensor], torch.Tensor],
    img_pil: Image.Image,
    img_tensor: torch.Tensor,
    reshape_transform: ReshapeTransform | None = None,
    n_components: int = 5,
    top_k: int = 2,
) -> np.ndarray:
    """The image beside its concepts coloured over it, with a legend of each concept's ``top_k`` labels
    (read from ``model.config.id2label``, a Hugging Face model's label table). uint8 (H, 2·W + legend, 3).

    pytorch-grad-cam's default ``reshape_transform`` is the typing object ``Optional[Callable]``, which it
    then calls (a TypeError); the default here is None.
    """
    labels = getattr(getattr(model, "config", None), "id2label", None)
    if labels is None:
        raise CamscopeError("run_dff_on_image reads the labels from model.config.id2label: the model has none")
    rgb = np.array(img_pil) / 255
    factorization = DeepFeatureFactorization(model, target_layer, reshape_transform, computation_on_concepts=classifier)
    _, explanations, outputs = factorization(img_tensor[None], n_components)
    probabilities = torch.softmax(torch.from_numpy(outputs), dim=-1).numpy()
    legend = create_labels_legend(probabilities, labels=labels, top_k=top_k)
    picture = show_factorization_on_image(rgb, explanations[0], image_weight=0.3, concept_labels=legend)
    return np.hstack((np.array(img_pil), picture))
