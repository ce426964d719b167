"""Ablation-CAM: the drop of the target score when each channel of the layer is switched off weighs it.

Its forward passes run batched, chunk by chunk, under ``torch.inference_mode()``, through only the part
of the network after the target layer (:mod:`camscope.methods.ablation_tail`); where that part is global
average pooling followed by a linear layer, the ablated logits have a closed form and need no pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import torch
from torch import nn

from camscope.core.capture import LayerCapture, LayerOutput, ReshapeTransform
from camscope.core.errors import CamscopeError
from camscope.core.outputs import Detections, Outputs, read_output
from camscope.core.progress import chunk_steps
from camscope.core.targets import Target, repeated_target_scores, target_scores
from camscope.methods.ablation_cls_tail import ClsTail, ClsTailInputs, build_cls_tail
from camscope.methods.ablation_detector_tail import DetectorTail, build_detector_tail, forward_replaced
from camscope.methods.ablation_tail import LayerTail, TailInputs, TailUnavailable, build_tail
from camscope.methods.base import BaseCAM, CamState, LayerState
from camscope.methods.registry import register_method

log = logging.getLogger("camscope")
_NOTICED: set[tuple[str, str]] = set()


def _explains_nothing(target: object) -> bool:
    """Whether ``target`` is zero whatever the model outputs (a box target without boxes, a segmentation target
    whose fixed region is empty), so no ablated copy needs to run."""
    return bool(getattr(target, "empty", False))


def _computing_nothing(layer: nn.Module, output: LayerOutput) -> AbstractContextManager[None]:
    """While active, ``layer`` returns ``output`` without computing anything: its result is replaced
    anyway, so a full forward need not pay for it (a detector's whole backbone, for Ablation-CAM on its
    feature pyramid; pytorch-grad-cam swaps the module for its ablation layer to the same effect)."""
    return forward_replaced(layer, lambda *args, **kwargs: output)


@register_method("ablationcam", "ablation-cam")
class AblationCAM(BaseCAM):
    """Ablation-CAM (Desai & Ramaswamy, WACV 2020): w_c = (y − y_c) / y, where y_c is the target score
    with channel c of the layer set to ``ablation_value`` (0: the channel switched off).

    The ablated scores come from the network after the layer only, computed from the recorded
    activation (exact; verified on the input), or in closed form when that part is pool + linear; at a
    ViT's last ``norm1`` only the tokens its head reads are recomputed (:mod:`camscope.methods.ablation_cls_tail`).
    Where the model cannot be split at the layer, full forward passes are used, with a one-line notice.

    ``ablation_layer`` and ``ratio_channels_to_ablate`` exist for pytorch-grad-cam compatibility: token
    layouts are handled from the reshape transform, so no ablation layer is needed, and every channel
    is ablated (the only ratio supported).
    """

    uses_gradients = False
    params = ("ablation_layer", "batch_size", "ratio_channels_to_ablate", "ablation_value", "use_tail", "progress")

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str] | nn.Module | str,
        reshape_transform: ReshapeTransform | None = None,
        ablation_layer: object | None = None,
        batch_size: int = 64,
        ratio_channels_to_ablate: float = 1.0,
        ablation_value: float = 0.0,
        use_tail: bool = True,
        progress: bool = True,
    ) -> None:
        super().__init__(model, target_layers, reshape_transform)
        if ratio_channels_to_ablate != 1.0:
            raise CamscopeError("AblationCAM ablates every channel: ratio_channels_to_ablate must be 1.0")
        self.batch_size = batch_size
        self.ablation_value = float(ablation_value)
        self.use_tail = use_tail
        self.progress = progress
        # how the last call was computed: "closed-form", "cls-path", "tail", "detector-heads", "full-forward", or
        # "zero-target" (targets zero whatever is ablated: nothing ran)
        self.last_strategy = ""

    def channel_weights(self, state: CamState, layer: LayerState) -> torch.Tensor:
        with torch.inference_mode():
            original = target_scores(state.targets, state.logits).float()
            ablated = self.ablated_scores(state, layer)
        safe = torch.where(original.abs() > 1e-12, original, torch.full_like(original, 1e-12))
        return (original[:, None] - ablated) / safe[:, None]

    def ablated_scores(self, state: CamState, layer: LayerState) -> torch.Tensor:
        """Target score of each image with each channel ablated, (N, C)."""
        if not isinstance(layer.output, torch.Tensor):
            rows, strategies = [], set()
            for i, target in enumerate(state.targets):
                own = {key: value[i : i + 1] for key, value in layer.output.items()}
                if _explains_nothing(target):  # zero for every copy: nothing to run
                    rows.append(torch.zeros(sum(value.shape[1] for value in own.values()), device=state.input.device))
                    continue
                heads = self._detector_heads(state, layer, i, own)
                strategies.add("detector-heads" if heads is not None else "full-forward")
                run = heads if heads is not None else self._full_forward(state.input[i : i + 1], layer.index)
                rows.append(self._named_scores(target, own, run))
            ran = [name for name in ("full-forward", "detector-heads") if name in strategies]
            self.last_strategy = ran[0] if ran else "zero-target"
            return torch.stack(rows)
        dim = self._channel_dim(layer)
        if all(_explains_nothing(target) for target in state.targets):
            self.last_strategy = "zero-target"
            return torch.zeros(len(state.targets), layer.output.shape[dim], device=layer.output.device)
        if self.use_tail and dim == layer.output.ndim - 1 and layer.output.ndim == 3:
            cls_path = build_cls_tail(self.model, layer.name, state.input)
            if cls_path is not None:
                self.last_strategy = "cls-path"
                return self._cls_path_scores(state.targets, *cls_path)
        split = self._split(state, layer) if self.use_tail else None
        if split is not None:
            tail, inputs = split
            linear = tail.global_pool_linear() if dim == 1 else None
            if linear is not None:
                self.last_strategy = "closed-form"
                return self._closed_form(state.targets, inputs, linear)
            self.last_strategy = "tail"
            rows = []
            for i, target in enumerate(state.targets):
                run = lambda batch, i=i: tail(batch, inputs.for_image(i, batch.shape[0]))  # noqa: E731
                rows.append(self._scores(target, inputs.layer_output[i : i + 1], dim, run))
            return torch.stack(rows)
        self.last_strategy = "full-forward"
        rows = []
        for i, target in enumerate(state.targets):
            full = self._full_forward(state.input[i : i + 1], layer.index)
            rows.append(self._scores(target, layer.output[i : i + 1], dim, full))
        return torch.stack(rows)

    def _channel_dim(self, layer: LayerState) -> int:
        """Which dimension of the raw output holds channels: 1 for (N, C, h, w), the last for tokens/NHWC."""
        channels = layer.activations.shape[1]
        assert isinstance(layer.output, torch.Tensor)  # named maps take _named_scores
        if self.reshape_transform is None and layer.output.ndim == 4:
            return 1
        if layer.output.shape[-1] == channels:
            return layer.output.ndim - 1
        if layer.output.ndim > 1 and layer.output.shape[1] == channels:
            return 1
        raise CamscopeError(
            f"cannot tell which dimension of layer {layer.name!r}'s output {tuple(layer.output.shape)} "
            f"holds its {channels} channels"
        )

    def _split(self, state: CamState, layer: LayerState) -> tuple[LayerTail, TailInputs] | None:
        try:
            return build_tail(self.model, layer.name, state.input)
        except TailUnavailable as exc:
            key = (type(self.model).__name__, layer.name)
            if key not in _NOTICED:
                _NOTICED.add(key)
                log.warning(
                    "camscope: notice: Ablation-CAM runs full forward passes for %s at %r (%s)",
                    key[0],
                    layer.name,
                    str(exc).splitlines()[0][:160],
                )
            return None

    def _detector_heads(
        self, state: CamState, layer: LayerState, index: int, own: dict[str, torch.Tensor]
    ) -> DetectorTail | None:
        """Image ``index``'s detector heads after the layer (:mod:`camscope.methods.ablation_detector_tail`)."""
        if not self.use_tail or not isinstance(state.logits, Detections):
            return None
        return build_detector_tail(self.model, layer.name, state.input[index : index + 1], own, state.logits[index])

    def _cls_path_scores(self, targets: list[Target], tail: ClsTail, inputs: ClsTailInputs) -> torch.Tensor:
        """ViT at ``blocks[-1].norm1``: only the tokens the head reads are recomputed, batched over channels."""
        channels = inputs.layer_output.shape[-1]
        rows = []
        for i, target in enumerate(targets):
            scores = torch.empty(channels, device=inputs.layer_output.device)
            output, prefix = inputs.layer_output[i : i + 1], inputs.prefix_input[i : i + 1]
            projections = tail.projections(output)
            for chunk in chunk_steps(channels, self.batch_size, "Ablation-CAM", self.progress):
                index = torch.arange(chunk.start, chunk.stop, device=output.device)
                logits = tail.ablated_logits(output, prefix, index, self.ablation_value, projections)
                scores[chunk] = repeated_target_scores(target, logits).float()
            rows.append(scores)
        return torch.stack(rows)

    def _closed_form(self, targets: list[Target], inputs: TailInputs, linear: nn.Linear) -> torch.Tensor:
        """Pool + linear tail: ablating channel k moves the logits by ``W[:, k] * (value - mean(A_k))``."""
        means = inputs.layer_output.float().mean(dim=(2, 3))  # (N, C)
        weight = linear.weight.float()  # (classes, C)
        rows = []
        for index, target in enumerate(targets):
            shift = (self.ablation_value - means[index])[:, None] * weight.T  # (C, classes)
            rows.append(repeated_target_scores(target, inputs.logits[index].float()[None] + shift).float())
        return torch.stack(rows)

    def _scores(
        self, target: Target, output: torch.Tensor, dim: int, run: Callable[[torch.Tensor], Outputs]
    ) -> torch.Tensor:
        """Score ``target`` on every single-channel ablation of one image's layer ``output`` (1, ...)."""
        channels = output.shape[dim]
        scores = torch.empty(channels, device=output.device)
        for chunk in chunk_steps(channels, self.batch_size, "Ablation-CAM", self.progress):
            batch = output.expand(chunk.stop - chunk.start, *output.shape[1:]).clone()
            rows = torch.arange(batch.shape[0], device=batch.device)
            channels_here = torch.arange(chunk.start, chunk.stop, device=batch.device)
            batch.movedim(dim, 1)[rows, channels_here] = self.ablation_value
            scores[chunk] = repeated_target_scores(target, run(batch)).float()
        return scores

    def _named_scores(
        self, target: Target, output: dict[str, torch.Tensor], run: Callable[[dict[str, torch.Tensor]], Outputs]
    ) -> torch.Tensor:
        """:meth:`_scores` for a layer with named maps (a feature pyramid): its channels are those of each
        map in turn, the order in which a reshape transform such as ``FeaturePyramidToGrid`` joins them
        (pytorch-grad-cam's AblationLayerFasterRCNN numbering)."""
        keys = list(output)
        sizes = [output[key].shape[1] for key in keys]
        starts = [sum(sizes[:k]) for k in range(len(keys))]
        scores = torch.empty(sum(sizes), device=output[keys[0]].device)
        for chunk in chunk_steps(sum(sizes), self.batch_size, "Ablation-CAM", self.progress):
            count = chunk.stop - chunk.start
            # a level with no channel ablated in this chunk stays one stride-0 view of the same map
            batch = {key: value.expand(count, *value.shape[1:]) for key, value in output.items()}
            copied: set[str] = set()
            for row, channel in enumerate(range(chunk.start, chunk.stop)):
                level = max(k for k in range(len(keys)) if starts[k] <= channel)
                key = keys[level]
                if key not in copied:
                    batch[key] = batch[key].clone()
                    copied.add(key)
                batch[key][row, channel - starts[level]] = self.ablation_value
            scores[chunk] = repeated_target_scores(target, run(batch)).float()
        return scores

    def _full_forward(self, image: torch.Tensor, layer_index: int) -> Callable[[LayerOutput], Outputs]:
        """A scorer that runs the whole model on copies of ``image`` with the layer's output replaced."""
        layer = self.target_layers[layer_index]

        def run(ablated: LayerOutput) -> Outputs:
            if not isinstance(ablated, torch.Tensor):  # its own memory for every level, as the layer gives
                ablated = {key: value.clone(memory_format=torch.contiguous_format) for key, value in ablated.items()}
            count = (ablated if isinstance(ablated, torch.Tensor) else next(iter(ablated.values()))).shape[0]
            with (
                LayerCapture(self.model, [layer]) as capture,
                capture.replacing(0, lambda _: ablated),
                _computing_nothing(layer, ablated),
            ):
                return read_output(capture.forward(image.expand(count, *image.shape[1:]).contiguous()))

        return run
