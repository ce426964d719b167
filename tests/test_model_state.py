"""Every method and every layer probe hands the model back exactly as it found it (as torchcam tests).

The model is in train mode with one BatchNorm kept in eval and one parameter frozen: a restore that
only resets the root flag (``model.train(was_training)``) would flip that BatchNorm back to train.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from camscope.methods import GuidedBackpropReLUModel, get_method, guided_gradcam, method_names
from camscope.models import infer_cam_layers
from camscope.models.layers import cam_layers_from_names, probe, reshape_for_layer


def _mixed_mode_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )
    model.train()
    model[1].eval()  # a frozen BatchNorm inside a model being fine-tuned
    model[0].bias.requires_grad_(False)
    return model


def _state(model: nn.Module) -> tuple[list[bool], list[bool], list[int]]:
    modules = list(model.modules())
    hooks = [len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in modules]
    return [m.training for m in modules], [p.requires_grad for p in model.parameters()], hooks


def _run_method(name: str, model: nn.Module, x: torch.Tensor) -> None:
    cls = get_method(name)
    params = {"progress": False} if "progress" in cls.params else {}
    cls(model, [model[3]], None, **params)(x, targets=[1, 2])


def _method_call(name: str):
    return lambda m, x: _run_method(name, m, x)


# Attention methods need a token model: tests/test_attention_capture.py::test_model_is_restored runs them on
# mixed-mode ViT, DeiT, CaiT and XCiT models and checks the same state (plus the fused-attention flags).
TOKEN_ONLY = {"attention", "rollout", "gradrollout", "legrad"}

CALLS = {
    **{f"method {name}": _method_call(name) for name in method_names() if name not in TOKEN_ONLY},
    "guided backprop": lambda m, x: GuidedBackpropReLUModel(m)(x, 1),
    "guided grad-cam": lambda m, x: guided_gradcam(m, [m[3]], x),
    "probe": lambda m, x: probe(m, (16, 16)),
    "probe, stopping early": lambda m, x: probe(m, (16, 16), {"3": m[3]}),
    "infer_cam_layers": lambda m, x: infer_cam_layers(m, (16, 16)),
    "reshape_for_layer": lambda m, x: reshape_for_layer(m, m[3], (16, 16)),
    "cam_layers_from_names": lambda m, x: cam_layers_from_names(m, ["3", "[4]"], (16, 16)),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_model_comes_back_exactly_as_it_was(call):
    model = _mixed_mode_model()
    before = _state(model)
    assert before[0][2] is False and before[0][0] is True  # the BatchNorm in eval, the model in train
    CALLS[call](model, torch.randn(2, 3, 16, 16))
    assert _state(model) == before


def test_model_comes_back_after_a_failing_call():
    model = _mixed_mode_model()
    before = _state(model)
    with pytest.raises(RuntimeError):
        GuidedBackpropReLUModel(model)(torch.randn(2, 5, 16, 16))  # wrong channel count: the forward raises
    assert _state(model) == before
