"""The pytorch-grad-cam 1.5.7 name layer: what its module paths need beyond camscope's own names.

pytorch-grad-cam users switch by replacing the package name (``sed -i 's/pytorch_grad_cam/camscope/g'``):
``camscope.utils.image``, ``camscope.metrics.road``, ``camscope.grad_cam`` … exist as thin modules that
import each name from where camscope defines it. This module holds the few adapters those paths share —
numpy-in/numpy-out views of the engine's scaling and projections, the peer's hook recorder, its ablation
layer declarations — and :data:`DIFFERENCES`, the one list of where a peer name deliberately behaves
otherwise (the README's switching table is written from it by ``benchmarks/compat_table.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from scipy.ndimage import zoom
from torch import nn

from camscope.methods.activation import kernel_projection
from camscope.methods.base import principal_projection, resize_maps, scale_per_image

PEER = "pytorch-grad-cam 1.5.7"

#: Peer name (its dotted path) → how camscope's counterpart differs, on purpose. Names not listed behave the same.
DIFFERENCES: dict[str, str] = {
    "pytorch_grad_cam.base_cam.BaseCAM": (
        "`[target]` for a batch of several images is an error (the peer explains image 0 only), a bare target "
        "applies to every image; train/eval mode and hooks restored; "
        "subclasses implement `channel_weights`/`layer_map` (torch), not `get_cam_weights` (numpy)"
    ),
    "pytorch_grad_cam.eigen_cam.EigenCAM": "principal component's sign fixed (largest absolute value positive)",
    "pytorch_grad_cam.eigen_grad_cam.EigenGradCAM": "principal component's sign fixed (as in EigenCAM)",
    "pytorch_grad_cam.utils.svd_on_activations.get_2d_projection": (
        "sign fixed, as in `get_2d_projection_with_sign_correction`"
    ),
    "pytorch_grad_cam.ablation_cam.AblationCAM": (
        "ablates from the cached activation (no full forward per channel); the channel is set to 0, also on token "
        "models (the peer: `min − 1e7` for layers that are not non-negative); `ratio_channels_to_ablate` must be 1"
    ),
    "pytorch_grad_cam.ablation_layer.AblationLayer": "a declaration: camscope's AblationCAM zeroes the channel itself",
    "pytorch_grad_cam.ablation_layer.AblationLayerVit": (
        "a declaration: token layouts come from the reshape transform; the channel is zeroed, not set to `min − 1e7`"
    ),
    "pytorch_grad_cam.ablation_layer.AblationLayerFasterRCNN": (
        "a declaration: camscope's AblationCAM zeroes the channel (the peer: −1000)"
    ),
    "pytorch_grad_cam.random_cam.RandomCAM": "seeded (`seed=0`): the peer draws from NumPy's global generator",
    "pytorch_grad_cam.guided_backprop.GuidedBackpropReLUModel": (
        "the model is never modified (gates are hooks); a batch gives one gradient per image"
    ),
    "pytorch_grad_cam.refine_cam.RefineCAM": (
        "`eigen_smooth` reaches the base method as eigen_smooth (the peer passes it as aug_smooth); usable with `with`"
    ),
    "pytorch_grad_cam.utils.image.show_factorization_on_image": (
        "works on matplotlib ≥ 3.9 (the peer's default colours call the removed `cm.get_cmap`); "
        "does not modify `explanations` or global matplotlib settings"
    ),
    "pytorch_grad_cam.feature_factorization.deep_feature_factorization.run_dff_on_image": (
        "`reshape_transform` defaults to None (the peer's default is a typing object it then calls)"
    ),
    "pytorch_grad_cam.metrics.perturbation_confidence.PerturbationConfidenceMetric": (
        "`[target]` for a batch of several images is an error (the peer scores image 0 only)"
    ),
    "pytorch_grad_cam.utils.reshape_transforms.vit_reshape_transform": (
        "a square patch grid of another size is accepted (the peer: height, width must match)"
    ),
    "pytorch_grad_cam.ablation_cam_multilayer.AblationCAM": "camscope's AblationCAM (several layers supported)",
    "pytorch_grad_cam.ablation_cam_multilayer.AblationLayer": "zeroes the channel (the peer: `min − 1e5` if min ≠ 0)",
}
_ONE_TARGET = "`[target]` for a batch of several images is an error (the peer scores image 0 only)"
for _name in (
    "cam_mult_image.CamMultImageConfidenceChange",
    "cam_mult_image.DropInConfidence",
    "cam_mult_image.IncreaseInConfidence",
    "road.ROADMostRelevantFirst",
    "road.ROADLeastRelevantFirst",
    "road.ROADMostRelevantFirstAverage",
    "road.ROADLeastRelevantFirstAverage",
    "road.ROADCombined",
    "arcc.ARCC",
):
    DIFFERENCES[f"pytorch_grad_cam.metrics.{_name}"] = _ONE_TARGET


# ---------------------------------------------------------------------------- numpy views of the engine
def scale_cam_image(cam: Any, target_size: Sequence[int] | None = None) -> np.ndarray:
    """Min-max scale each map of ``cam`` (N, h, w) to [0, 1] and resize it to ``target_size`` = (width, height)
    (OpenCV's order; bilinear). 3-D maps (N, d, h, w) are resized with ``scipy.ndimage.zoom`` to
    ``target_size`` = (width, height, depth) reversed per axis, as pytorch-grad-cam does."""
    maps = torch.as_tensor(np.float32(cam))
    scaled = scale_per_image(maps)
    if target_size is None:
        return scaled.numpy()
    if maps.ndim == 3:
        return resize_maps(scaled, (int(target_size[1]), int(target_size[0]))).numpy()
    zoomed = [zoom(image, [t / s for s, t in zip(image.shape, list(target_size)[::-1])]) for image in scaled.numpy()]
    return np.asarray(zoomed, dtype=np.float32)


def scale_accross_batch_and_channels(tensor: Any, target_size: Sequence[int]) -> np.ndarray:
    """:func:`scale_cam_image` of every (image, channel) map of (N, C, h, w); ``target_size`` = (width, height)."""
    array = np.asarray(tensor)
    n, c = array.shape[:2]
    scaled = scale_cam_image(array.reshape(n * c, *array.shape[2:]), target_size)
    return scaled.reshape(n, c, int(target_size[1]), int(target_size[0]))


def get_2d_projection_with_sign_correction(activation_batch: np.ndarray) -> np.ndarray:
    """Projection of each position on the activations' first principal component, salient side positive."""
    return principal_projection(torch.as_tensor(np.asarray(activation_batch))).numpy().astype(np.float32)


def get_2d_projection(activation_batch: np.ndarray) -> np.ndarray:
    """As :func:`get_2d_projection_with_sign_correction`: camscope always fixes the sign (see DIFFERENCES)."""
    return get_2d_projection_with_sign_correction(activation_batch)


def get_2d_projection_kernel(
    activation_batch: np.ndarray, kernel: str = "sigmoid", gamma: float | None = None
) -> np.ndarray:
    """First kernel-PCA component of each position (:func:`camscope.methods.activation.kernel_projection`)."""
    projection = kernel_projection(torch.as_tensor(np.asarray(activation_batch)), kernel, gamma)
    return projection.numpy().astype(np.float32)


# ---------------------------------------------------------------------------- the peer's hook recorder
class ActivationsAndGradients:
    """Records the outputs of ``target_layers`` on each call (``activations``) and, after a backward pass,
    their gradients (``gradients``, in layer order), through ``reshape_transform``; detached on the CPU
    unless ``detach=False``. Hooks stay until :meth:`release`. camscope's methods do not use it (their
    hooks live only inside a call); it is here for code written against pytorch-grad-cam's.
    """

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module],
        reshape_transform: Callable[[torch.Tensor], torch.Tensor] | None,
        detach: bool = True,
    ) -> None:
        self.model = model
        self.reshape_transform = reshape_transform
        self.detach = detach
        self.activations: list[torch.Tensor] = []
        self.gradients: list[torch.Tensor] = []
        self.handles = [layer.register_forward_hook(self._record) for layer in target_layers]

    def _view(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.detach:
            return tensor
        if self.reshape_transform is not None:
            tensor = self.reshape_transform(tensor)
        return tensor.cpu().detach()

    def _record(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        self.activations.append(self._view(output))
        if isinstance(output, torch.Tensor) and output.requires_grad:

            def store(grad: torch.Tensor) -> None:
                self.gradients = [self._view(grad), *self.gradients]  # backward runs the layers in reverse

            output.register_hook(store)  # type: ignore[no-untyped-call]

    def __call__(self, x: torch.Tensor) -> Any:
        self.activations, self.gradients = [], []
        return self.model(x)

    def clear(self) -> None:
        self.activations.clear()
        self.gradients.clear()

    def release(self) -> None:
        self.clear()
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


# ---------------------------------------------------------------------------- ablation layer declarations
class AblationLayer(nn.Module):
    """pytorch-grad-cam's ablation layer for CNN channels, accepted by ``AblationCAM(ablation_layer=...)``.

    camscope's Ablation-CAM does the ablation itself, from the cached activation: the channel is set to
    ``ablation_value`` (0). The peer sets it to 0 when the batch minimum is 0 (ReLU outputs: the same) and
    to ``min − 1e7`` otherwise.
    """


class AblationLayerVit(AblationLayer):
    """Token models (ViT, Swin): camscope reads the token layout from the reshape transform and zeroes the
    channel in every token. The peer sets it to ``min(batch) − 1e7``, re-read after every write, so its
    value depends on the channel's position in the ablation batch."""


class AblationLayerFasterRCNN(AblationLayer):
    """Faster R-CNN's FPN outputs (a dict of levels): the peer sets the channel to −1000; camscope zeroes it."""


class LayerAblation(nn.Module):
    """``ablation_cam_multilayer.AblationLayer``: runs ``layer`` and zeroes channel ``indices[i]`` of batch
    item i (channels last when a ``reshape_transform`` is given, as for tokens) — always 0, where the peer
    uses ``min − 1e5`` when the output's minimum is not 0."""

    def __init__(self, layer: nn.Module, reshape_transform: Callable[..., Any] | None, indices: Sequence[int]) -> None:
        super().__init__()
        self.layer = layer
        self.reshape_transform = reshape_transform
        self.indices = indices

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.layer(x)
        channels_dim = output.ndim - 1 if self.reshape_transform is not None else 1
        ablated = output.clone()
        for i in range(ablated.shape[0]):
            ablated[i].select(channels_dim - 1, int(self.indices[i])).zero_()
        return ablated
