"""The network after a layer, as a function of that layer's output.

Perturbation methods (Ablation-CAM and anything else that perturbs activations) need the model's score
for many perturbed copies of one layer's output. Re-running the whole network for each copy repeats the
part before the layer, which does not change; this module cuts the traced graph at the layer and keeps
only what depends on it. Values that the rest of the network takes from *before* the layer (a residual
input, the CLS token, the input image itself) are computed once and passed in as constants, so the cut
is exact for any architecture that torch.fx can trace, not just chains of modules.

A split is verified on the real input before it is used (the tail applied to the recorded layer output
must reproduce the model's logits), so a wrong split can never give a silently wrong map: the caller
falls back to full forward passes instead.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from camscope.core.targets import model_logits


class TailUnavailable(Exception):
    """The model cannot be split at this layer (untraceable, layer reused, output independent of it)."""


class _CutTracer(fx.Tracer):
    """Traces through the layer's ancestors only; every other module stays one opaque call."""

    def __init__(self, layer_path: str) -> None:
        super().__init__()
        parts = layer_path.split(".")
        self.layer_path = layer_path
        self.ancestors = {".".join(parts[:i]) for i in range(len(parts))}

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name not in self.ancestors


@dataclass
class TailInputs:
    """What the tail needs besides the layer output, for a batch of N images."""

    layer_output: torch.Tensor
    externals: list[Any]
    logits: torch.Tensor
    #: positions of integer externals proportional to the batch size (``B = x.shape[0]``, ``B * windows``)
    per_image_ints: dict[int, int] = field(default_factory=dict)

    def for_image(self, index: int, copies: int) -> list[Any]:
        """Externals of image ``index`` repeated ``copies`` times along the batch dimension."""
        n = self.layer_output.shape[0]
        out = []
        for position, value in enumerate(self.externals):
            if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == n:
                value = value[index : index + 1].expand(copies, *value.shape[1:])
            elif position in self.per_image_ints:
                value = self.per_image_ints[position] * copies
            out.append(value)
        return out


class LayerTail:
    """``model`` split at ``layer_path``: :meth:`prepare` runs the front once, ``tail(...)`` the rest."""

    def __init__(self, model: nn.Module, layer_path: str) -> None:
        try:
            graph = _CutTracer(layer_path).trace(model)
        except Exception as exc:  # fx raises many kinds of errors on untraceable code
            raise TailUnavailable(f"torch.fx cannot trace {type(model).__name__}: {exc}") from exc
        self.root = fx.GraphModule(model, graph)
        layer_nodes = [n for n in graph.nodes if n.op == "call_module" and n.target == layer_path]
        if len(layer_nodes) != 1:
            raise TailUnavailable(f"layer {layer_path!r} is called {len(layer_nodes)} times in the forward pass")
        self.layer_node = layer_nodes[0]
        self.front, self.tail, self.tail_nodes = self._split(graph, self.layer_node)

    def _split(self, graph: fx.Graph, layer_node: fx.Node) -> tuple[fx.GraphModule, fx.GraphModule, list[fx.Node]]:
        downstream: set[fx.Node] = {layer_node}
        for node in graph.nodes:
            if any(inp in downstream for inp in node.all_input_nodes):
                downstream.add(node)
        output_node = next(n for n in graph.nodes if n.op == "output")
        if output_node not in downstream:
            raise TailUnavailable("the model's output does not depend on the layer")
        externals: list[fx.Node] = []
        for node in graph.nodes:
            if node in downstream:
                for inp in node.all_input_nodes:
                    if inp not in downstream and inp.op != "get_attr" and inp not in externals:
                        externals.append(inp)

        tail_graph = fx.Graph()
        env: dict[fx.Node, fx.Node] = {layer_node: tail_graph.placeholder("layer_output")}
        for i, node in enumerate(externals):
            env[node] = tail_graph.placeholder(f"external_{i}")
        kept = []
        for node in graph.nodes:
            if node not in downstream or node is layer_node:
                continue
            for inp in node.all_input_nodes:
                if inp.op == "get_attr" and inp not in env:
                    env[inp] = tail_graph.node_copy(inp, lambda n: env[n])
            env[node] = tail_graph.node_copy(node, lambda n: env[n])
            kept.append(node)
        tail = fx.GraphModule(self.root, tail_graph)

        front_graph = fx.Graph()
        front_env: dict[fx.Node, fx.Node] = {}
        for node in graph.nodes:
            if node.op == "output":
                original = fx.map_arg(node.args[0], lambda n: front_env[n])
                front_graph.output((original, front_env[layer_node], [front_env[e] for e in externals]))
            else:
                front_env[node] = front_graph.node_copy(node, lambda n: front_env[n])
        front = fx.GraphModule(self.root, front_graph)
        return front, tail, kept

    def prepare(self, input_tensor: torch.Tensor) -> TailInputs:
        """One full forward pass that also returns the layer output and the values the tail needs."""
        output, layer_output, externals = self.front(input_tensor)
        return TailInputs(layer_output, list(externals), model_logits(output))

    def __call__(self, layer_output: torch.Tensor, externals: list[Any]) -> torch.Tensor:
        return model_logits(self.tail(layer_output, *externals))

    def verify(self, inputs: TailInputs, atol: float = 1e-4) -> None:
        """The tail must reproduce the model's logits from the recorded layer output (per image)."""
        # A batch size unlike the input's, so shapes baked in from the input's batch are caught.
        copies = inputs.layer_output.shape[0] + 1
        for index in range(inputs.layer_output.shape[0]):
            layer = inputs.layer_output[index : index + 1].expand(copies, *inputs.layer_output.shape[1:])
            try:
                # torch.fx prints the generated code of a failing graph to stderr; the caller's notice
                # already says why the split is not used
                with contextlib.redirect_stderr(io.StringIO()):
                    logits = self(layer.contiguous(), inputs.for_image(index, copies))
            except Exception as exc:
                raise TailUnavailable(f"the split network fails on a batch of copies: {exc}") from exc
            expected = inputs.logits[index : index + 1].expand_as(logits)
            scale = max(1.0, float(expected.abs().max()))
            if logits.shape != expected.shape or not torch.allclose(logits, expected, rtol=1e-4, atol=atol * scale):
                raise TailUnavailable("the split network does not reproduce the model's output")

    def global_pool_linear(self) -> nn.Linear | None:
        """The final Linear when the tail is exactly global-average-pool + flatten + Linear, else None.

        Then ablating a channel changes the logits in closed form: ``-W[:, k] * (mean(A_k) - value)``.
        """
        linear = None
        pooled = False
        for node in self.tail_nodes:
            if node.op == "output":
                continue
            if node.op == "call_module":
                module = self.root.get_submodule(str(node.target))
                if isinstance(module, (nn.Identity, nn.Dropout, nn.Flatten)):
                    continue
                if isinstance(module, nn.AdaptiveAvgPool2d) and _is_one(module.output_size) and not pooled:
                    pooled = True
                    continue
                if _is_timm_avg_pool(module) and not pooled:
                    pooled = True
                    continue
                if isinstance(module, nn.Linear) and pooled and linear is None:
                    linear = module
                    continue
                return None
            if node.op == "call_function" and node.target in (torch.flatten,) and pooled:
                continue
            if node.op == "call_method" and node.target in ("flatten", "view", "reshape") and pooled:
                continue
            return None
        return linear if pooled else None


def _is_one(size: Any) -> bool:
    return size == 1 or (isinstance(size, (tuple, list)) and all(s == 1 for s in size))


def _is_timm_avg_pool(module: nn.Module) -> bool:
    return type(module).__name__ == "SelectAdaptivePool2d" and getattr(module, "pool_type", "") == "avg"


def build_tail(model: nn.Module, layer_path: str, input_tensor: torch.Tensor) -> tuple[LayerTail, TailInputs]:
    """Split ``model`` at ``layer_path`` and verify the split on ``input_tensor``.

    Raises TailUnavailable when the split is impossible or does not reproduce the model.
    """
    tail = LayerTail(model, layer_path)
    inputs = tail.prepare(input_tensor)
    if any(_is_int(v) for v in inputs.externals):
        inputs.per_image_ints = _batch_proportional_ints(tail, input_tensor, inputs)
    tail.verify(inputs)
    return tail, inputs


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _batch_proportional_ints(tail: LayerTail, input_tensor: torch.Tensor, inputs: TailInputs) -> dict[int, int]:
    """Integers the traced code computed from the batch size, found by running the front on another batch size.

    Shapes such as Swin's ``B, H, W, C = x.shape`` become constants in the traced graph; the tail must
    see the size of the ablation batch instead. Anything misjudged here is caught by :meth:`LayerTail.verify`.
    """
    n = input_tensor.shape[0]
    probe_n = 2 if n == 1 else 1
    probe = tail.prepare(input_tensor[:1].expand(probe_n, *input_tensor.shape[1:]))
    found = {}
    for position, (value, probe_value) in enumerate(zip(inputs.externals, probe.externals)):
        if _is_int(value) and _is_int(probe_value) and value != probe_value and value * probe_n == probe_value * n:
            found[position] = value // n
    return found
