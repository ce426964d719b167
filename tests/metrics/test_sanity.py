"""Cascading model-parameter randomization (Adebayo et al. 2018)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import timm
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from camscope.core.errors import MetricInputError
from camscope.metrics import randomization_sanity
from camscope.metrics.sanity import ROOT, cascade_steps, spearman_rank, ssim

X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def inline_gradcam(layer: str, target: int = 1):
    """Grad-CAM written out: ReLU(Σ_k mean(∂y/∂A_k) A_k), upsampled and min-max scaled per image."""

    def explain(model: nn.Module) -> np.ndarray:
        store = {}
        module = model.get_submodule(layer)
        handle = module.register_forward_hook(lambda m, i, o: store.update(act=o))
        try:
            out = model(X)
        finally:
            handle.remove()
        grads = torch.autograd.grad(out[:, target].sum(), store["act"])[0]
        cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * store["act"]).sum(1, keepdim=True))
        cam = nn.functional.interpolate(cam, size=X.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        lo = cam.amin(dim=(1, 2), keepdim=True)
        hi = cam.amax(dim=(1, 2), keepdim=True)
        return ((cam - lo) / (hi - lo + 1e-7)).detach().numpy()

    return explain


def test_steps_go_top_down_and_cover_every_parameter(make_cnn):
    model = make_cnn()
    steps = cascade_steps(model)
    assert [name for name, _ in steps] == ["6", "2", "0"]
    vit = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=5, img_size=32, patch_size=8, depth=2, init_values=1e-5
    )
    names = [name for name, _ in cascade_steps(vit)]
    assert names[:3] == ["head", "norm", "blocks.1"] and names[-2:] == ["patch_embed", ROOT]
    covered = [p for _, params in cascade_steps(vit) for p in params]
    assert sorted(covered) == sorted(n for n, _ in vit.named_parameters())


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("vit_tiny_patch16_224", {"patch_size": 8, "init_values": 1e-5}),
        ("deit_tiny_distilled_patch16_224", {"patch_size": 8}),
        ("xcit_nano_12_p16_224", {}),
    ],
)
def test_every_parameter_is_randomized_and_the_original_is_untouched(name, kwargs):
    """cls/dist tokens, position embeddings, LayerScale gammas, XCiT temperatures included."""
    model = timm.create_model(name, pretrained=False, num_classes=5, img_size=32, depth=2, **kwargs).eval()
    before = copy.deepcopy(model.state_dict())
    seen: list[dict[str, torch.Tensor]] = []

    def explain(m: nn.Module) -> np.ndarray:
        seen.append({n: p.detach().clone() for n, p in m.named_parameters()})
        return np.random.default_rng(len(seen)).random((1, 8, 8))

    randomization_sanity(model, explain)
    unchanged = [n for n, p in seen[-1].items() if torch.equal(p, before[n])]
    assert unchanged == []
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_gradcam_maps_change_and_are_not_flagged(make_cnn):
    model = make_cnn()
    state = copy.deepcopy(model.state_dict())
    result = randomization_sanity(model, inline_gradcam("2"), seed=0)
    assert result.steps == ["6", "2", "0"]
    assert result.spearman.shape == result.ssim.shape == (3, 2)
    assert result.spearman[-1].mean() < 0.5 and not result.flagged
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    np.testing.assert_allclose(result.baseline, inline_gradcam("2")(model))


def test_pytorch_grad_cam_gradcam_as_explain(make_cnn):
    model = make_cnn()

    def explain(m: nn.Module) -> np.ndarray:
        with GradCAM(model=m, target_layers=[m.get_submodule("2")]) as cam:
            return cam(input_tensor=X, targets=[ClassifierOutputTarget(1)] * 2)

    result = randomization_sanity(model, explain, layers=["6", "2"])
    assert result.steps == ["6", "2", ROOT] and not result.flagged


def test_a_model_independent_method_is_flagged(make_cnn):
    """A "method" returning the image's brightness ignores the model: its maps never change."""
    brightness = X.mean(1).numpy()
    brightness = (brightness - brightness.min()) / (brightness.max() - brightness.min())
    result = randomization_sanity(make_cnn(), lambda m: brightness)
    assert result.flagged
    np.testing.assert_allclose(result.spearman, 1.0)
    np.testing.assert_allclose(result.ssim, 1.0)


def test_similarity_measures_on_known_cases():
    rng = np.random.default_rng(0)
    a = rng.random((1, 16, 16))
    np.testing.assert_allclose(spearman_rank(a, 2 * a + 1), [1.0])
    np.testing.assert_allclose(spearman_rank(a, -a), [-1.0])
    const = np.full((1, 16, 16), 0.3)
    assert spearman_rank(const, const).tolist() == [1.0] and spearman_rank(const, a).tolist() == [0.0]
    np.testing.assert_allclose(ssim(a, a), [1.0])
    # constant maps: only the luminance term is left, (2 μx μy + C1) / (μx² + μy² + C1)
    c1 = 0.01**2
    expected = (2 * 0.3 * 0.6 + c1) / (0.3**2 + 0.6**2 + c1)
    np.testing.assert_allclose(ssim(const, 2 * const), [expected])


def test_bad_layer_name(make_cnn):
    with pytest.raises(MetricInputError, match="no submodule"):
        randomization_sanity(make_cnn(), lambda m: np.zeros((1, 4, 4)), layers=["nope"])
