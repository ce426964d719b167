"""Targets and raw tensors through the CLI and the Python API: valid ones work, invalid ones are camscope errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import camscope
from camscope.core.errors import CamscopeWarning, InputError, TargetError
from tests.reliability.helpers import CNN, assert_one_line_error


def _random_mini(name: str) -> torch.nn.Module:
    """A mini model with seeded random weights (wiring tests), its random-weights warning silenced."""
    from camscope.models import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        return load_model(name, random_weights=True)


@pytest.fixture(scope="module")
def cnn():
    return _random_mini("mini_resnet")


@pytest.fixture(scope="module")
def vit():
    return _random_mini("mini_deit")


@pytest.mark.parametrize(
    ("value", "needle"), [("-1", "start at 0"), ("abc", "not a class index"), ("3.5", "not a class index")]
)
def test_cli_target_refused_before_work(run_cli, image: Path, value: str, needle: str) -> None:
    assert_one_line_error(run_cli("explain", image, *CNN, "--target", value), "--target", needle)
    assert_one_line_error(run_cli("evaluate", image, *CNN, "--target", value), "--target", needle)


def test_cli_target_out_of_range(run_cli, image: Path, tmp_path: Path) -> None:
    run = run_cli("explain", image, *CNN, "--target", 10, "--out", tmp_path / "o")
    assert_one_line_error(run, "out of range", "10 classes")


def test_gradcam_class_index_types_agree(cnn) -> None:
    x = torch.rand(2, 3, 64, 64)
    cam = camscope.GradCAM(cnn, ["layer4"])
    expected = cam(x, 3)
    for same in (np.int64(3), torch.tensor(3), np.array(3), [np.int32(3), torch.tensor(3)]):
        np.testing.assert_allclose(cam(x, same), expected, atol=1e-6)
    assert camscope.ClassifierOutputTarget(np.int64(3)).category == 3


@pytest.mark.parametrize("bad", [3.0, np.float32(2.0), torch.tensor(1.5), [1, 2.5], True])
def test_float_or_bool_target_is_a_target_error(cnn, bad) -> None:
    x = torch.rand(2, 3, 64, 64)
    with pytest.raises(TargetError, match="not a class index"):
        camscope.GradCAM(cnn, ["layer4"])(x, bad)


def test_negative_target_refused_in_the_api(cnn) -> None:
    with pytest.raises(TargetError, match="start at 0"):
        camscope.GradCAM(cnn, ["layer4"])(torch.rand(1, 3, 64, 64), -1)
    with pytest.raises(TargetError, match="start at 0"):
        camscope.ClassifierOutputTarget(-2)


def test_explain_api_reports_numpy_target(cnn, image: Path) -> None:
    result = camscope.explain(cnn, image, "gradcam", np.int64(4))
    assert result.target == 4 and isinstance(result.target, int)


def test_wrong_channel_count_says_what_the_model_expects(cnn) -> None:
    with pytest.raises(InputError, match="expects 3-channel images, got 1"):
        camscope.GradCAM(cnn, ["layer4"])(torch.rand(1, 1, 64, 64))


def test_wrong_input_size_for_a_vit(vit) -> None:
    layers, reshape = camscope.models.get_spec("mini_deit").cam_layers(vit)
    with pytest.raises(InputError, match="expects 64x64 inputs, got 80x80"):
        camscope.GradCAM(vit, layers, reshape)(torch.rand(1, 3, 80, 80))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_input_tensor_refused(cnn, value: float) -> None:
    x = torch.rand(2, 3, 64, 64)
    x[1, 0, 5, 5] = value
    for method in (camscope.GradCAM, camscope.EigenCAM, camscope.ScoreCAM):
        with pytest.raises(InputError, match=r"NaN or infinite values \(image\(s\) \[1\]\)"):
            method(cnn, ["layer4"])(x)


def test_nan_outputs_give_a_warning_and_a_zero_map_not_a_picture(cnn) -> None:
    import copy

    broken = copy.deepcopy(cnn)
    with torch.no_grad():
        broken.fc.weight[0, 0] = float("nan")  # activations stay finite: Eigen-CAM would draw a normal map
    x = torch.rand(1, 3, 64, 64)
    for method in (camscope.EigenCAM, camscope.GradCAM, camscope.LayerCAM):
        with pytest.warns(CamscopeWarning, match="NaN or infinite"):
            maps = method(broken, ["layer4"])(x)
        assert np.all(maps == 0)


def test_explanation_carries_the_warning(cnn) -> None:
    import copy

    broken = copy.deepcopy(cnn)
    with torch.no_grad():
        broken.fc.bias.fill_(float("inf"))
    with pytest.warns(CamscopeWarning):
        result = camscope.explain(broken, np.zeros((64, 64, 3), np.uint8), "eigencam")
    assert any("NaN or infinite" in w for w in result.warnings)
