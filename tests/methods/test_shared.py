"""Many methods, one pass: every map computed from a shared pass equals the method run alone (≤ 1e-6)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import camscope
from camscope.methods.shared import compute_many, pass_groups, shares_pass

#: the methods that read one layer's activations (and gradients) and nothing else
PASS_METHODS = [
    "gradcam",
    "gradcam++",
    "xgradcam",
    "layercam",
    "hirescam",
    "gradcamelementwise",
    "eigencam",
    "eigengradcam",
]
TOL = 1e-6
TARGETS = [1, 3]


@pytest.fixture(params=["cnn", "vit"])
def setup(request, cnn, cnn_input, vit, vit_input, vit_reshape):
    if request.param == "cnn":
        return cnn, [cnn.stage2], None, cnn_input
    return vit, [vit.blocks[-1].norm1], vit_reshape, vit_input


def alone(name: str, model, layers, reshape, x, **flags) -> np.ndarray:
    return camscope.get_method(name)(model, layers, reshape)(x, TARGETS, **flags)


def count_forwards(model: torch.nn.Module):
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("aug_smooth", [False, True])
@pytest.mark.parametrize("eigen_smooth", [False, True])
def test_all_pass_methods_together_equal_each_alone(setup, aug_smooth: bool, eigen_smooth: bool) -> None:
    model, layers, reshape, x = setup
    cams = [camscope.get_method(name)(model, layers, reshape) for name in PASS_METHODS]
    calls, handle = count_forwards(model)
    try:
        shared = compute_many(cams, x, TARGETS, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
    finally:
        handle.remove()
    assert len(calls) == 1  # one forward pass for all eight
    for name, maps in zip(PASS_METHODS, shared):
        expected = alone(name, model, layers, reshape, x, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
        got = maps.detach().cpu().numpy()
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= TOL, name
        assert expected.max() > 0.5, name  # not an all-zero comparison


@pytest.mark.parametrize("pair", list(itertools.combinations(PASS_METHODS, 2)), ids="+".join)
def test_every_pair_equals_each_alone(pair, cnn, cnn_input) -> None:
    layers = [cnn.stage2]
    cams = [camscope.get_method(name)(cnn, layers) for name in pair]
    for name, maps in zip(pair, compute_many(cams, cnn_input, TARGETS)):
        expected = alone(name, cnn, layers, None, cnn_input)
        assert np.abs(maps.cpu().numpy() - expected).max() <= TOL, name


def test_perturbation_methods_share_the_pass_and_other_layers_do_not(cnn, cnn_input) -> None:
    names = ["gradcam", "scorecam", "ablationcam", "randomcam"]
    cams = [camscope.get_method(name)(cnn, [cnn.stage2]) for name in names]
    cams.append(camscope.GradCAM(cnn, [cnn.stage1]))  # another layer: another pass
    cams.append(camscope.FullGrad(cnn))  # its own layers
    assert pass_groups(cams) == [[0, 1, 2, 3], [4], [5]]
    shared = compute_many(cams, cnn_input, TARGETS)
    expected = [camscope.get_method(name)(cnn, [cnn.stage2])(cnn_input, TARGETS) for name in names]
    expected += [camscope.GradCAM(cnn, [cnn.stage1])(cnn_input, TARGETS), camscope.FullGrad(cnn)(cnn_input, TARGETS)]
    for name, got, want in zip([*names, "gradcam@stage1", "fullgrad"], shared, expected):
        assert np.abs(got.cpu().numpy() - want).max() <= TOL, name


def test_a_method_with_its_own_pass_is_run_alone(cnn, cnn_input) -> None:
    class OwnPass(camscope.GradCAM):
        def forward_pass(self, x, targets):
            return super().forward_pass(x * 0.5, targets)

    own = OwnPass(cnn, [cnn.stage2])
    plain = camscope.GradCAM(cnn, [cnn.stage2])
    assert not shares_pass(own) and shares_pass(plain)
    assert pass_groups([plain, own]) == [[0], [1]]
    got = compute_many([plain, own], cnn_input, TARGETS)
    np.testing.assert_allclose(got[1].cpu().numpy(), own(cnn_input, TARGETS), atol=TOL)


def test_explain_with_a_list_of_methods_returns_each_methods_result(cnn, cnn_input) -> None:
    images = [(np.random.default_rng(i).random((64, 64, 3)) * 255).astype(np.uint8) for i in range(2)]
    names = ["gradcam", "layercam", "eigencam"]
    results = camscope.explain(cnn, images, method=names, targets=TARGETS, layers=["stage2"])
    assert list(results) == names
    for name in names:
        single = camscope.explain(cnn, images, method=name, targets=TARGETS, layers=["stage2"])
        for got, want in zip(results[name], single):
            assert got.method == want.method == name
            assert got.target == want.target and got.top_classes == want.top_classes
            assert np.abs(got.map - want.map).max() <= TOL
    one = camscope.explain(cnn, images[0], method=["gradcam"], targets=1, layers=["stage2"])
    assert isinstance(one["gradcam"], camscope.api.Explanation)
