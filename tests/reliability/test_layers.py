"""Target layers chosen by name: token-model layers work from the CLI; degenerate layers are flagged."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import camscope
from camscope.core.errors import CamscopeWarning
from camscope.core.layer_paths import module_path
from tests.reliability.helpers import CNN, VIT, assert_one_line_error, warning_lines


def test_token_model_layer_by_name_from_the_cli(run_cli, image: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    run = run_cli(
        "explain", image, *VIT, "--method", "eigencam", "--layer", "blocks.1.norm1", "--out", out, "--save-map"
    )
    assert run.code == 0, run.err
    assert "eigencam at blocks.1.norm1" in run.out
    cam = np.load(tmp_path / "o.random-weights.npy")
    assert cam.shape == (64, 64) and cam.max() > cam.min()


def test_token_model_default_layer_by_name_equals_the_default(image: Path) -> None:
    from camscope.models import get_spec, load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model("mini_deit", random_weights=True)
    spec = get_spec("mini_deit")
    layers, _ = spec.cam_layers(model)
    name = module_path(model, layers[0])
    default = camscope.explain(model, image, "gradcam", 2)
    named = camscope.explain(model, image, "gradcam", 2, layers=[name])
    np.testing.assert_allclose(named.map, default.map, atol=1e-6)


def test_unknown_layer_gives_near_matches(run_cli, image: Path) -> None:
    line = assert_one_line_error(run_cli("explain", image, *VIT, "--layer", "blocks.1.nrom1"), "blocks.1.nrom1")
    assert "blocks.1.norm1" in line


def test_layer_without_spatial_output(run_cli, image: Path) -> None:
    assert_one_line_error(run_cli("explain", image, *CNN, "--layer", "fc"), "fc")


def test_pooled_layer_is_flagged(run_cli, image: Path, tmp_path: Path) -> None:
    run = run_cli("explain", image, *CNN, "--layer", "avgpool", "--out", tmp_path / "o.png")
    assert run.code == 0, run.err
    lines = warning_lines(run)
    assert any("avgpool gives a 1x1 map" in w for w in lines) and any("constant" in w for w in lines)


def test_input_so_small_the_feature_map_collapses(image: Path) -> None:
    from camscope.models import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model("mini_resnet", random_weights=True)
    with pytest.warns(CamscopeWarning, match="1x1 map"):
        camscope.GradCAM(model, ["layer4"])(torch.rand(1, 3, 8, 8))


def test_normal_call_raises_no_warning(image: Path) -> None:
    from camscope.models import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        model = load_model("mini_resnet", random_weights=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CamscopeWarning)
        maps = camscope.EigenCAM(model, ["layer3"])(torch.rand(2, 3, 64, 64))
    assert maps.shape == (2, 64, 64)
