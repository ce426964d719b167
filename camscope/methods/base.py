"""BaseCAM: the one engine every CAM method runs on.

It owns what all methods share — input and target validation, hooks (through :class:`LayerCapture`),
gradients, the per-layer ReLU / min-max scaling / upsampling, aggregation over several target layers,
``eigen_smooth`` and ``aug_smooth`` — so a method only says how it turns one layer's activations
(and gradients) into a map: usually by giving channel weights (:meth:`BaseCAM.channel_weights`),
otherwise by overriding :meth:`BaseCAM.layer_map`.

A method also declares what it reads from the model's pass (:class:`Reads`: target layers, reshape,
whether it needs gradients there or at the input). The pass itself is one function of that
declaration (:func:`capture_state`), and a method's maps are a function of its result
(:meth:`BaseCAM.maps_from_state`), so several methods that read the same layers for the same targets
can be served by one forward+backward pass (:func:`camscope.methods.shared.compute_many`).

The call shape and the numbers are those of pytorch-grad-cam 1.5.7, so its users switch by changing an
import; the differences are deliberate and listed in the tests (one target for a batch is broadcast
instead of silently explaining only the first image, the model's train/eval mode is restored, the sign
of the principal component in Eigen methods is fixed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from camscope.core.capture import (
    LayerCapture,
    LayerOutput,
    ReshapeTransform,
    detach_output,
    eval_mode,
    model_device,
    resolve_layers,
    to_grid,
)
from camscope.core.errors import InputError, LayerError, TargetError, warn
from camscope.core.outputs import Outputs, nonfinite_images, read_output
from camscope.core.targets import Target, TargetSpec, is_single_target, resolve_targets, target_scores

#: Test-time augmentations of ``aug_smooth``: horizontal flip × brightness factor, as pytorch-grad-cam
#: does with ttach (HorizontalFlip, Multiply([0.9, 1, 1.1])).
AUG_FLIPS: tuple[bool, ...] = (False, True)
AUG_FACTORS: tuple[float, ...] = (0.9, 1.0, 1.1)
AUG_COMBOS: tuple[tuple[bool, float], ...] = tuple((flip, factor) for flip in AUG_FLIPS for factor in AUG_FACTORS)


@dataclass(frozen=True)
class Reads:
    """What a method reads from one pass of the model: the outputs of ``layers`` (through ``reshape``),
    and, if asked, the target score's gradients there and at the input.

    Methods whose declarations have the same :attr:`key` can share one pass; it then computes the union
    of what they ask for (:meth:`merge`) — an extra gradient never changes what another method reads.
    """

    model: nn.Module
    layers: tuple[nn.Module, ...]
    reshape: ReshapeTransform | None = None
    gradients: bool = True
    input_gradient: bool = False

    @property
    def key(self) -> tuple[int, ...]:
        """Identity of the pass: the same model, layers (in order) and reshape transform object."""
        return (id(self.model), *(id(layer) for layer in self.layers), id(self.reshape))

    def merge(self, other: Reads) -> Reads:
        assert self.key == other.key, "only reads of the same pass merge"
        return Reads(
            self.model,
            self.layers,
            self.reshape,
            self.gradients or other.gradients,
            self.input_gradient or other.input_gradient,
        )


@dataclass
class LayerState:
    """One target layer after the forward (and backward) pass."""

    index: int
    layer: nn.Module
    name: str
    output: LayerOutput  # the layer's raw output (e.g. tokens, or a detector's named maps), detached
    activations: torch.Tensor  # (N, C, h, w) after the reshape transform
    grads: torch.Tensor | None = None  # (N, C, h, w), d(target score)/d(activations)


@dataclass
class CamState:
    """Everything a method may need about one call: input, outputs, targets, layers."""

    input: torch.Tensor
    logits: Outputs  # what targets read: class scores, dense scores or detections (camscope.core.outputs)
    targets: list[Target]
    layers: list[LayerState] = field(default_factory=list)
    input_grad: torch.Tensor | None = None

    @property
    def size(self) -> tuple[int, int]:
        return int(self.input.shape[-2]), int(self.input.shape[-1])


def scale_per_image(maps: torch.Tensor) -> torch.Tensor:
    """Min-max scale each map to [0, 1]; a constant map becomes all zeros (never NaN).

    Same formula as pytorch-grad-cam: ``(m - min) / (1e-7 + max(m - min))``.
    """
    flat = torch.nan_to_num(maps.flatten(1), nan=0.0)
    flat = flat - flat.min(dim=1, keepdim=True).values
    flat = flat / (1e-7 + flat.max(dim=1, keepdim=True).values)
    return flat.view_as(maps)


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, h, w) maps, half-pixel centres (the same as OpenCV's INTER_LINEAR)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def principal_projection(activations: torch.Tensor) -> torch.Tensor:
    """Projection of each position's channel vector on the first principal component: (N, C, h, w) → (N, h, w).

    The sign of a singular vector is arbitrary (LAPACK builds differ), which can turn an Eigen-CAM map
    upside down; we orient it so that its largest absolute value is positive, the correction that
    pytorch-grad-cam ships as ``get_2d_projection_with_sign_correction`` (Seg-Eigen-CAM, Eq. 13).
    """
    n, c, h, w = activations.shape
    flat = torch.nan_to_num(activations.float()).reshape(n, c, h * w).transpose(1, 2)
    flat = flat - flat.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(flat, full_matrices=False)
    projection = flat @ vh[:, 0, :, None]
    projection = projection.reshape(n, h * w)
    flip = projection.min(dim=1).values.abs() > projection.max(dim=1).values.abs()
    projection = torch.where(flip[:, None], -projection, projection)
    return projection.reshape(n, h, w)


def capture_state(reads: Reads, x: torch.Tensor, targets: TargetSpec) -> CamState:
    """One forward pass of ``reads.model`` on ``x`` with hooks on ``reads.layers``, and one backward pass
    from the targets' scores to the layers (and the input) when ``reads`` asks for gradients.

    Gradients are taken with ``autograd.grad`` to exactly these tensors: no parameter gradients.
    """
    layers = list(reads.layers)
    with LayerCapture(reads.model, layers, need_grad=reads.gradients) as capture:
        if not reads.gradients:
            with torch.inference_mode():
                logits = read_output(capture.forward(x))
                state = CamState(x, logits, resolve_targets(targets, logits))
            grads: Sequence[torch.Tensor | None] = [None] * len(layers)
        else:
            with torch.enable_grad():
                x = x.detach().clone().requires_grad_(reads.input_gradient)
                logits = read_output(capture.forward(x))
                resolved = resolve_targets(targets, logits.detach())
                wrt = capture.recorded() + ([x] if reads.input_gradient else [])
                score = target_scores(resolved, logits).sum()
                no_path = (None,) * len(wrt)  # the score does not depend on anything that requires grad
                raw = torch.autograd.grad(score, wrt, allow_unused=True) if score.requires_grad else no_path
                all_grads = [g if g is not None else torch.zeros_like(t) for g, t in zip(raw, wrt)]
            state = CamState(x.detach(), logits.detach(), resolved)
            if reads.input_gradient:
                state.input_grad = all_grads[-1]
            grads = all_grads[: len(layers)]
        for index, (layer, name, output, grad) in enumerate(zip(layers, capture.names, capture.outputs, grads)):
            assert output is not None
            output = detach_output(output)
            reshape = reads.reshape or _token_layout(reads.model, output, state.size, name)
            activations = to_grid(output, reshape, name)
            grid_grad = to_grid(grad, reshape, name) if grad is not None else None
            state.layers.append(LayerState(index, layer, name, output, activations, grid_grad))
    return state


def _token_layout(
    model: nn.Module, output: LayerOutput, input_hw: tuple[int, int], name: str
) -> ReshapeTransform | None:
    """Tokens (N, T, C) from a layer given without a reshape transform: the grid the model's own layout
    gives (prefix tokens from timm's ``num_prefix_tokens`` or a transformers config), so a transformer's
    layer works as a CNN's does; anything else is left to :func:`to_grid`."""
    if not isinstance(output, torch.Tensor) or output.ndim != 3:
        return None
    from camscope.models.layers import token_reshape

    return token_reshape(model, tuple(output.shape), input_hw, name)


def augment(x: torch.Tensor, targets: TargetSpec) -> tuple[torch.Tensor, TargetSpec]:
    """The ``aug_smooth`` batch: every (flip, brightness) copy of ``x`` in one batch, targets repeated."""
    n = x.shape[0]
    batch = torch.cat([(x.flip(-1) if flip else x) * factor for flip, factor in AUG_COMBOS])
    if is_single_target(targets):
        return batch, targets
    entries = list(cast(Sequence[Any], targets))  # not a single target: one per image
    if len(entries) != n:
        raise TargetError(f"got {len(entries)} targets for a batch of {n} images: give one per image")
    return batch, entries * len(AUG_COMBOS)


def deaugment(maps: torch.Tensor, n: int) -> torch.Tensor:
    """The mean of the maps of :func:`augment`'s copies, each flipped back: (len(AUG_COMBOS)·n, H, W) → (n, H, W)."""
    views = maps.view(len(AUG_COMBOS), n, *maps.shape[-2:])
    restored = [m.flip(-1) if flip else m for m, (flip, _) in zip(views, AUG_COMBOS)]
    return torch.stack(restored).mean(dim=0)


def flag_suspicious(
    state: CamState, maps: torch.Tensor, layer_maps: Sequence[torch.Tensor], check_layers: bool = True
) -> torch.Tensor:
    """Warn about maps that look valid but mean nothing; the maps of images with non-finite outputs become zero.

    Three cases, each a :class:`~camscope.core.errors.CamscopeWarning` naming the images: the model's
    outputs are NaN/inf (NaN weights, overflow) — the map would otherwise be a normal-looking picture
    of garbage, so it is set to zero; a target layer whose map is 1×1 (a pooled layer, or an input so
    small that the feature map collapses) — nothing spatial is left to show; a map that is constant
    (all zero), e.g. when no channel has a positive weight.
    """
    bad = nonfinite_images(state.logits).to(maps.device)
    if bad.any():
        images = bad.nonzero()[:, 0].tolist()
        warn("the model's outputs are NaN or infinite (NaN weights?): the map is set to zero", images)
        maps = maps.clone()
        maps[bad] = 0.0
    for layer, layer_map in zip(state.layers if check_layers else [], layer_maps):
        if layer_map.shape[-2] * layer_map.shape[-1] == 1:
            warn(
                f"target layer {layer.name} gives a 1x1 map at this input size: the CAM shows nothing spatial; "
                "pick an earlier layer or a larger input"
            )
    flat = maps.flatten(1)
    constant = ~bad & (flat.amax(1) - flat.amin(1) <= 0)
    if constant.any():
        images = constant.nonzero()[:, 0].tolist()
        warn("the map is constant (all zero): it shows nothing", images)
    return maps


def input_mismatch(model: nn.Module, x: torch.Tensor) -> str | None:
    """What is wrong with ``x`` for ``model`` (channels, fixed input size), or None if nothing is known to be.

    Called when the model's forward pass failed, to replace a raw torch/timm message with one that says
    what the model expects; it never refuses an input the model would have taken.
    """
    from camscope.models.layers import hf_vision_config  # only once a pass failed: camscope.models loads the zoo

    try:
        hf_vision_config(model)
    except LayerError as exc:  # a transformers model that takes no image (a text model): nothing fits it
        return str(exc)
    channels, size = expected_input(model)
    if channels is not None and x.shape[1] != channels:
        return f"the model expects {channels}-channel images, got {x.shape[1]} channels (shape {tuple(x.shape)})"
    if size is not None and tuple(x.shape[-2:]) != size:
        return (
            f"the model expects {size[0]}x{size[1]} inputs, got {x.shape[-2]}x{x.shape[-1]}: "
            "resize the input (camscope.explain does it with the model's preprocessing)"
        )
    return None


def expected_input(model: nn.Module) -> tuple[int | None, tuple[int, int] | None]:
    """(channels, fixed (H, W) or None) the model accepts: the first convolution's input channels, and
    the patch embedding's size when it is strict (timm ViTs with ``strict_img_size``)."""
    channels = None
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            channels = module.in_channels
            break
        if isinstance(module, nn.Linear):  # an MLP-first model: nothing to say about channels
            break
    patch_embed = getattr(model, "patch_embed", None)
    size = None
    config = getattr(model, "config", None)  # a transformers image model: its config's image_size
    image_size = getattr(config, "image_size", None) if hasattr(config, "model_type") else None
    if isinstance(image_size, int) or (isinstance(image_size, (tuple, list)) and len(image_size) == 2):
        size = (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))
    if patch_embed is not None and getattr(patch_embed, "strict_img_size", False):
        img_size = getattr(patch_embed, "img_size", None)
        if img_size is not None and not getattr(patch_embed, "dynamic_img_pad", False):
            size = (int(img_size[0]), int(img_size[1])) if not isinstance(img_size, int) else (img_size, img_size)
    return channels, size


class BaseCAM:
    """Class activation maps for a batch: ``cam(input_tensor, targets) -> np.float32 (N, H, W) in [0, 1]``.

    Args:
        model: any classifier ``nn.Module``; its output may be a tensor, a tuple (first item) or have
            ``.logits``. It is put in eval mode during a call and restored afterwards.
        target_layers: modules of ``model`` (or dotted paths) whose outputs are explained; several
            layers are averaged after per-layer scaling.
        reshape_transform: maps a layer's raw output to (N, C, h, w), e.g. tokens to a grid.
    """

    name: ClassVar[str] = ""
    params: ClassVar[tuple[str, ...]] = ()  # constructor keywords after the common three (see registry)
    # False: the method picks its own layers (FullGrad; attention methods, RELAX): callers that choose default
    # CAM layers (explain, sweeps) pass None
    takes_layers: ClassVar[bool] = True
    #: reads the attention of a token model's class-token row (no CNN or Swin has one)
    reads_attention: ClassVar[bool] = False
    #: what the pass must compute for this method (see :meth:`reads`)
    uses_gradients: ClassVar[bool] = True
    needs_input_gradient: ClassVar[bool] = False
    #: the maps are :meth:`maps_from_state` of the pass :meth:`reads` declares, so the pass may be shared
    #: with other methods; a method that overrides ``forward_pass`` or ``_maps`` is never shared.
    shares_pass: ClassVar[bool] = True

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str,
        reshape_transform: ReshapeTransform | None = None,
    ) -> None:
        self.model = model
        self.target_layers = resolve_layers(model, target_layers)
        self.reshape_transform = reshape_transform
        self.outputs: Outputs | None = None  # what targets read in the last forward pass (as pytorch-grad-cam's)

    # pytorch-grad-cam's context-manager shape; hooks live only inside each call, so nothing to release.
    def __enter__(self) -> BaseCAM:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layers={[type(layer).__name__ for layer in self.target_layers]})"

    # ------------------------------------------------------------------ the public call
    def __call__(
        self,
        input_tensor: torch.Tensor,
        targets: TargetSpec = None,
        aug_smooth: bool = False,
        eigen_smooth: bool = False,
    ) -> np.ndarray:
        maps = self.compute(input_tensor, targets, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
        return maps.detach().float().cpu().numpy()

    forward = __call__

    def compute(
        self,
        input_tensor: torch.Tensor,
        targets: TargetSpec = None,
        aug_smooth: bool = False,
        eigen_smooth: bool = False,
    ) -> torch.Tensor:
        """Like ``__call__`` but returns a tensor on the model's device."""
        x = self._check_input(input_tensor)
        try:
            with eval_mode(self.model), torch.inference_mode(False):
                if not aug_smooth:
                    return self._maps(x, targets, eigen_smooth)
                return self._augmented_maps(x, targets, eigen_smooth)
        except (RuntimeError, AssertionError, ValueError) as exc:
            problem = input_mismatch(self.model, x)
            if problem is None:
                raise
            raise InputError(problem) from exc

    # ------------------------------------------------------------------ what methods override
    def reads(self) -> Reads:
        """What this method reads from the model's pass (by default: from the class flags)."""
        return Reads(
            self.model,
            tuple(self.target_layers),
            self.reshape_transform,
            self.uses_gradients,
            self.needs_input_gradient,
        )

    def maps_from_state(self, state: CamState, eigen_smooth: bool) -> torch.Tensor:
        """The maps (N, H, W) of one pass's :class:`CamState` (which may hold more than this method reads)."""
        layer_maps = [self.layer_map(state, layer, eigen_smooth) for layer in state.layers]
        maps = self.combine_layers(state, layer_maps)
        return flag_suspicious(state, maps, layer_maps, check_layers=self.takes_layers)

    def channel_weights(self, state: CamState, layer: LayerState) -> torch.Tensor:
        """Weight of each channel, (N, C). Methods that weight channels implement only this."""
        raise NotImplementedError(f"{type(self).__name__} must implement channel_weights or layer_map")

    def layer_map(self, state: CamState, layer: LayerState, eigen_smooth: bool) -> torch.Tensor:
        """The map of one layer before ReLU and scaling, (N, h, w)."""
        weights = self.channel_weights(state, layer)
        weighted = weights[:, :, None, None] * layer.activations
        return principal_projection(weighted) if eigen_smooth else weighted.sum(dim=1)

    def combine_layers(self, state: CamState, layer_maps: list[torch.Tensor]) -> torch.Tensor:
        """Per layer: ReLU, scale, upsample; then the mean over layers, scaled again."""
        size = state.size
        scaled = [resize_maps(scale_per_image(torch.relu(m.float())), size) for m in layer_maps]
        stacked = torch.stack(scaled, dim=1)
        return scale_per_image(torch.relu(stacked).mean(dim=1))

    # ------------------------------------------------------------------ the engine
    def _check_input(self, input_tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(input_tensor, torch.Tensor):
            raise InputError(f"input_tensor must be a torch.Tensor, got {type(input_tensor).__name__}")
        if input_tensor.ndim != 4:
            hint = " (add a batch dimension: x[None])" if input_tensor.ndim == 3 else ""
            raise InputError(
                f"input_tensor must have shape (batch, channels, height, width), got {tuple(input_tensor.shape)}" + hint
            )
        if not input_tensor.is_floating_point():
            raise InputError(f"input_tensor must be a float tensor, got {input_tensor.dtype}")
        if input_tensor.shape[0] == 0:
            raise InputError("input_tensor is an empty batch")
        if not torch.isfinite(input_tensor).all():
            bad = sorted({int(i) for i in (~torch.isfinite(input_tensor)).flatten(1).any(1).nonzero()[:, 0]})
            raise InputError(f"input_tensor holds NaN or infinite values (image(s) {bad}): fix the input first")
        return input_tensor.to(model_device(self.model))

    def _maps(self, x: torch.Tensor, targets: TargetSpec, eigen_smooth: bool) -> torch.Tensor:
        return self.maps_from_state(self.forward_pass(x, targets), eigen_smooth)

    def forward_pass(self, x: torch.Tensor, targets: TargetSpec) -> CamState:
        """Run the model once with hooks; add gradients at the layers (and the input) if the method uses them."""
        state = capture_state(self.reads(), x, targets)
        self.outputs = state.logits
        return state

    def _augmented_maps(self, x: torch.Tensor, targets: TargetSpec, eigen_smooth: bool) -> torch.Tensor:
        """Average of the maps of flipped and brightness-scaled copies, each mapped back (one batched call)."""
        batch, repeated = augment(x, targets)
        return deaugment(self._maps(batch, repeated, eigen_smooth), x.shape[0])
