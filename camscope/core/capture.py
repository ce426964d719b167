"""Capture what target layers output (and the gradients there) during one forward pass.

One context manager owns every hook the engine registers, so hooks never outlive a call, even when the
forward pass raises. It also leaves the model as it found it: the train/eval flag of every module is
restored on exit, and ``requires_grad`` flags are never touched.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

import torch
from torch import nn

from camscope.core.errors import LayerError
from camscope.core.layer_paths import module_path, resolve_layers

__all__ = [
    "HookSession",
    "LayerCapture",
    "ReshapeTransform",
    "eval_mode",
    "model_device",
    "model_lock",
    "module_path",
    "resolve_layers",
    "to_grid",
]

ReshapeTransform = Callable[[Any], torch.Tensor]
#: what a target layer outputs: a tensor, or named feature maps (a detector's feature pyramid)
LayerOutput = torch.Tensor | dict[str, torch.Tensor]


def detach_output(output: LayerOutput) -> LayerOutput:
    if isinstance(output, torch.Tensor):
        return output.detach()
    return {key: value.detach() for key, value in output.items()}


def model_device(model: nn.Module) -> torch.device:
    for parameter in model.parameters():
        return parameter.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


ForwardHook = Callable[[nn.Module, Any, Any], Any]

_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model: nn.Module) -> threading.RLock:
    """The model's own re-entrant lock: held by every camscope call that runs the model.

    Why: hooks, the train/eval flags and ``fused_attn`` are state of the shared modules, so two threads
    running one model at once would read each other's activations and restore each other's flags.
    Calls on one model are serialised (a thread's nested calls re-enter); different models run in
    parallel. The lock lives beside the model (a weak map), never on it, so models still pickle.
    """
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextmanager
def eval_mode(model: nn.Module, hooks: Iterable[tuple[nn.Module, ForwardHook]] = ()) -> Iterator[nn.Module]:
    """Run in eval mode with ``hooks`` (module, forward hook) in place; on exit, even on an exception,
    remove the hooks and restore each module's own training flag (not just the root's: a BatchNorm kept
    in eval inside a model in train mode stays in eval). Everything that calls a model it was handed
    runs inside this, holding the model's lock (:func:`model_lock`) throughout.
    """
    lock = model_lock(model)
    lock.acquire()
    modes = [(m, m.training) for m in model.modules()]
    handles = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_hook(hook))
        model.eval()
        yield model
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
        lock.release()


def to_grid(output: LayerOutput, reshape_transform: ReshapeTransform | None, layer_name: str) -> torch.Tensor:
    """A layer output as (N, C, h, w): through the reshape transform if one is given."""
    if not isinstance(output, torch.Tensor) and reshape_transform is None:
        raise LayerError(
            f"layer {layer_name!r} outputs named feature maps ({', '.join(output)}), not one tensor: give a "
            "reshape_transform that joins them (camscope.models.reshape.FeaturePyramidToGrid)"
        )
    if reshape_transform is not None:
        try:
            grid = reshape_transform(output)
        except LayerError:
            raise
        except Exception as exc:
            raise LayerError(
                f"reshape_transform does not fit the output of layer {layer_name!r} (shape {_shape(output)}): {exc}"
            ) from exc
        if not isinstance(grid, torch.Tensor) or grid.ndim != 4:
            shape = tuple(grid.shape) if isinstance(grid, torch.Tensor) else type(grid).__name__
            raise LayerError(
                f"reshape_transform turned the output of layer {layer_name!r} (shape {_shape(output)}) "
                f"into {shape}; it must return (batch, channels, height, width)"
            )
        return grid
    assert isinstance(output, torch.Tensor)
    if output.ndim != 4:
        raise LayerError(
            f"layer {layer_name!r} outputs shape {tuple(output.shape)}, not (batch, channels, height, width): "
            "token models need a reshape_transform (camscope.models.infer_cam_layers finds one)"
        )
    return output


def _shape(output: LayerOutput) -> object:
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    return {key: tuple(value.shape) for key, value in output.items()}


class HookSession:
    """A context that changes a model for the length of a call: holds the model's lock
    (:func:`model_lock`) while active, installs its hooks and settings in :meth:`_install`, and undoes
    them on exit — also when installing fails halfway, so a model is never left half-hooked."""

    model: nn.Module

    def __enter__(self) -> Self:
        self._handles: list[Any] = []
        self._undo: list[Callable[[], None]] = []
        self._lock = model_lock(self.model)
        self._lock.acquire()
        try:
            self._install()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        self._lock.release()

    def _install(self) -> None:
        raise NotImplementedError


class LayerCapture(HookSession):
    """Forward hooks that record the outputs of ``layers`` while active.

    Each recorded output is the layer's own tensor; the network continues on a copy, so in-place
    operations downstream (``out += identity``, ``ReLU(inplace=True)``) can neither change the recorded
    values nor make autograd differentiate with respect to a modified version. When ``need_grad`` is
    set and an output does not require grad (frozen model), the recorded tensor is made a leaf that
    does, so gradients exist at the layer whatever the caller's ``requires_grad`` flags are. The
    model's lock (:func:`model_lock`) is held while active.

    A layer may also output named feature maps (a dict of tensors, as a detector's feature pyramid):
    they are recorded as a dict for gradient-free methods; gradients there are refused.
    """

    def __init__(
        self, model: nn.Module, layers: Sequence[nn.Module], need_grad: bool = False, record_inputs: bool = False
    ) -> None:
        self.model = model
        self.layers = list(layers)
        self.need_grad = need_grad
        self.record_inputs = record_inputs
        self.names = [module_path(model, layer) for layer in self.layers]
        self.outputs: list[LayerOutput | None] = [None] * len(self.layers)
        #: each layer's first positional input, when ``record_inputs`` (as received: a later in-place
        #: operation of the network may change it, so a user must check what it computes from it)
        self.inputs: list[torch.Tensor | None] = [None] * len(self.layers)
        self._replacements: dict[int, Callable[[Any], Any]] = {}

    def _install(self) -> None:
        for index, layer in enumerate(self.layers):
            self._handles.append(layer.register_forward_hook(self._make_hook(index)))

    def _make_hook(self, index: int) -> Callable[..., torch.Tensor]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
            if _is_feature_dict(output):
                if self.need_grad and torch.is_grad_enabled():
                    raise LayerError(
                        f"layer {self.names[index]!r} outputs named feature maps ({', '.join(output)}): gradient "
                        f"methods need a layer with one tensor output{_one_level(module, self.names[index])}; "
                        "gradient-free methods (eigencam, ablationcam) read these maps"
                    )
                self.outputs[index] = dict(output)
                replace_named = self._replacements.get(index)
                if replace_named is not None:
                    return replace_named(output)
                return type(output)((key, value.clone()) for key, value in output.items())
            if not isinstance(output, torch.Tensor):
                raise LayerError(
                    f"layer {self.names[index]!r} returns {type(output).__name__}, not a tensor: "
                    "choose a layer whose output is a feature map or token tensor"
                )
            if self.record_inputs and inputs and isinstance(inputs[0], torch.Tensor):
                self.inputs[index] = inputs[0]
            if self.need_grad and torch.is_grad_enabled() and not output.requires_grad:
                output = output.detach().requires_grad_(True)
            self.outputs[index] = output
            replace = self._replacements.get(index)
            return replace(output) if replace is not None else output.clone()

        return hook

    @contextmanager
    def replacing(self, index: int, fn: Callable[[Any], Any]) -> Iterator[None]:
        """Substitute ``fn(output)`` for layer ``index``'s output while active (activation perturbation)."""
        self._replacements[index] = fn
        try:
            yield
        finally:
            self._replacements.pop(index, None)

    def forward(self, input_tensor: torch.Tensor) -> Any:
        self.outputs = [None] * len(self.layers)
        self.inputs = [None] * len(self.layers)
        result = self.model(input_tensor)
        missing = [name for name, out in zip(self.names, self.outputs) if out is None]
        if missing:
            raise LayerError(f"target layer(s) {missing} did not run in the model's forward pass")
        return result

    def recorded(self) -> list[torch.Tensor]:
        return [out for out in self.outputs if isinstance(out, torch.Tensor)]


def _one_level(module: nn.Module, name: str) -> str:
    """A torchvision feature pyramid's layer that gives one level alone, as a hint (empty for other modules)."""
    blocks = getattr(getattr(module, "fpn", None), "layer_blocks", None)
    return f" (one level's, e.g. {name}.fpn.layer_blocks.0)" if isinstance(blocks, nn.ModuleList) and blocks else ""


def _is_feature_dict(output: Any) -> bool:
    return isinstance(output, Mapping) and bool(output) and all(isinstance(v, torch.Tensor) for v in output.values())
