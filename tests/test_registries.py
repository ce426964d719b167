"""Every registry refuses a taken name, and each entry's declaration matches what it really takes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from camscope.core.errors import NameTakenError, UnknownNameError
from camscope.methods import BaseCAM, GradCAM, get_method, method_names, register_method
from camscope.methods.registry import METHODS
from camscope.metrics import METRICS, Column, get_metric, higher_is_better, register_metric, unregister_metric
from camscope.models import get_spec, register_model


def test_registering_a_taken_method_name_or_alias_is_an_error():
    with pytest.raises(NameTakenError, match="gradcam"):
        register_method("gradcam")(type("Other", (BaseCAM,), {}))
    with pytest.raises(NameTakenError, match="scorecam"):
        register_method("my_cam", "Score-CAM")(type("Other", (BaseCAM,), {}))
    assert get_method("gradcam") is GradCAM and "my_cam" not in method_names()


def test_a_method_must_declare_its_constructor_parameters():
    class Undeclared(BaseCAM):
        def __init__(self, model, target_layers, reshape_transform=None, alpha: float = 1.0) -> None:
            super().__init__(model, target_layers, reshape_transform)

    with pytest.raises(TypeError, match=r"params = \('alpha',\)"):
        register_method("undeclared_cam")(Undeclared)
    Undeclared.params = ("alpha",)
    try:
        assert register_method("undeclared_cam")(Undeclared) is get_method("Undeclared-CAM")
    finally:
        METHODS.remove("undeclared_cam")


def test_unknown_method_names_get_close_match_hints():
    with pytest.raises(UnknownNameError, match="did you mean gradcam"):
        get_method("gradcan")


def _toy_metric(model, inputs, maps, targets, *, batch_size: int = 8):
    raise AssertionError("never called")


def test_registering_a_taken_metric_name_or_column_is_an_error():
    with pytest.raises(NameTakenError, match="deletion"):
        register_metric("deletion", _toy_metric, [Column("new_column", True)], params=("batch_size",))
    with pytest.raises(NameTakenError, match="deletion_auc"):
        register_metric("toy", _toy_metric, [Column("deletion_auc", True)], params=("batch_size",))
    assert "toy" not in METRICS and not higher_is_better("deletion_auc")


def test_a_metric_must_declare_its_parameters():
    with pytest.raises(TypeError, match="batch_size"):
        register_metric("toy", _toy_metric, [Column("toy_score", True)])
    metric = register_metric("toy", _toy_metric, [Column("toy_score", False)], params=("batch_size",))
    try:
        assert get_metric("TOY") is metric and metric.takes("batch_size") and not metric.takes("mean")
        assert not higher_is_better("toy_score")
    finally:
        unregister_metric("toy")
    assert "toy" not in METRICS and higher_is_better("toy_score")


def test_registering_a_taken_model_name_is_an_error():
    with pytest.raises(NameTakenError, match="already registered"):
        register_model(get_spec("mini_resnet"))


@pytest.mark.parametrize("name", list(METRICS))
def test_declared_columns_are_what_the_metric_returns(name):
    """A metric's summary has exactly its declared columns, and curves exactly where it declares them."""
    metric = get_metric(name)
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    x, maps = torch.randn(2, 3, 32, 32), np.random.default_rng(0).random((2, 32, 32)).astype(np.float32)
    masks = np.zeros((2, 32, 32), bool)
    masks[:, 8:20, 8:20] = True
    kwargs = {
        "deletion": {"step": 128},
        "insertion": {"step": 128},
        "road": {"percentages": [30, 70]},
        "smooth_mprt": {"nr_samples": 2, "skip_layers": True},
        "mprt": {"skip_layers": True},
    }
    shared = metric.accepted(explain_func="gradcam")  # the metrics that re-explain the model
    result = metric(cnn, x, maps, None, ground_truth=masks, **shared, **kwargs.get(name, {}))
    assert set(result.summary()) == {c.name for c in metric.columns}
    curves = metric.curves(result, 32 * 32)
    assert set(curves) == {c.name for c in metric.columns if c.curve}
    for x_values, ys in curves.values():
        assert ys.shape == (2, len(x_values)) and 0 <= min(x_values) <= max(x_values) <= 1
