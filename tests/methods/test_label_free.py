"""Label-free explanations on an embedding model whose answer is known by construction.

The model sees only one region: its conv features are multiplied by a fixed mask (the top-left quarter)
before average pooling, so nothing outside that quarter can change the embedding. Every label-free
map must therefore put its maximum inside the quarter and at least twice the mean relevance inside as
outside: RELAX, and HiResCAM / LayerCAM with a SimilarityTarget (the image's own embedding, inner
product) or a CorpusTarget (COCOA).

Grad-CAM cannot pass this by construction, and that is a property, not a failure: its channel weights
are gradients averaged over positions, and the weighted sum Σ_c w_c A_c is then taken over the whole
feature map, including the positions the embedding never reads.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import camscope
from camscope.core.errors import TargetError
from camscope.core.targets import own_embedding_targets

SIZE = 32
REGION = (slice(0, SIZE // 2), slice(0, SIZE // 2))


class OneRegionEmbedder(nn.Module):
    """conv → ReLU → conv → ReLU → × fixed mask (top-left quarter) → average pool → 24-d embedding."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 24, 3, padding=1), nn.ReLU()
        )
        mask = torch.zeros(1, 1, SIZE, SIZE)
        mask[..., REGION[0], REGION[1]] = 1.0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.features(x) * self.mask).mean(dim=(2, 3))


@pytest.fixture(scope="module")
def embedder() -> nn.Module:
    return OneRegionEmbedder().eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4))


def inside_outside(maps: np.ndarray) -> list[tuple[float, float, bool]]:
    out = []
    for m in maps:
        inside = np.zeros_like(m, dtype=bool)
        inside[REGION] = True
        peak = np.unravel_index(np.argmax(m), m.shape)
        out.append((float(m[inside].mean()), float(m[~inside].mean()), bool(inside[peak])))
    return out


def assert_localised(maps: np.ndarray) -> None:
    assert maps.shape == (2, SIZE, SIZE) and maps.dtype == np.float32
    for inside, outside, peak_inside in inside_outside(maps):
        assert peak_inside
        assert inside >= 2 * outside, (inside, outside)


def label_free_targets(embedder, images, kind: str):
    with torch.no_grad():
        own = embedder(images)
        corpus = embedder(torch.randn(6, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(9)))
    if kind == "similarity":
        return own_embedding_targets(own)
    return [camscope.CorpusTarget(corpus[:4], foil=corpus[4:])] * 2


@pytest.mark.parametrize("kind", ["similarity", "corpus"])
@pytest.mark.parametrize("method", ["HiResCAM", "LayerCAM"])
def test_gradient_maps_find_the_only_region_the_embedding_reads(embedder, images, method, kind) -> None:
    targets = label_free_targets(embedder, images, kind)
    maps = getattr(camscope, method)(embedder, [embedder.features[-1]])(images, targets)
    assert_localised(maps)


def test_relax_finds_the_only_region_the_embedding_reads(embedder, images) -> None:
    relax = camscope.RELAX(embedder, num_masks=1500, batch_size=250, progress=False)
    maps = relax(images)
    assert_localised(maps)
    assert relax.uncertainty is not None and relax.uncertainty.shape == (2, SIZE, SIZE)
    assert (relax.uncertainty >= 0).all()


@pytest.mark.parametrize("kind", ["similarity", "corpus"])
def test_relax_with_label_free_targets(embedder, images, kind) -> None:
    targets = label_free_targets(embedder, images, kind)
    maps = camscope.RELAX(embedder, num_masks=1500, batch_size=250, progress=False)(images, targets)
    assert_localised(maps)


def test_gradcam_cannot_localise_this_model_by_construction(embedder, images) -> None:
    """A documented property: Grad-CAM spreads over the whole feature map (inside ≈ outside)."""
    targets = label_free_targets(embedder, images, "similarity")
    maps = camscope.GradCAM(embedder, [embedder.features[-1]])(images, targets)
    for inside, outside, _ in inside_outside(maps):
        assert inside < 1.5 * outside


def test_relax_is_seeded(embedder, images) -> None:
    a = camscope.RELAX(embedder, num_masks=200, batch_size=64, seed=1, progress=False)(images)
    b = camscope.RELAX(embedder, num_masks=200, batch_size=64, seed=1, progress=False)(images)
    c = camscope.RELAX(embedder, num_masks=200, batch_size=64, seed=2, progress=False)(images)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # batching does not change the result
    d = camscope.RELAX(embedder, num_masks=200, batch_size=200, seed=1, progress=False)(images)
    np.testing.assert_allclose(a, d, atol=1e-5)


def test_relax_matches_a_per_mask_loop(embedder, images) -> None:
    """Closed-form batched sums equal the paper's per-mask weighted mean and variance."""
    from camscope.methods.relax import draw_cells, render_masks

    relax = camscope.RELAX(embedder, num_masks=40, batch_size=16, seed=3, progress=False)
    relax(images[:1])
    masks = render_masks(*draw_cells(40, torch.Generator().manual_seed(3)), (SIZE, SIZE))
    with torch.no_grad():
        ref = embedder(images[:1])[0]
        weight, total, squares = np.full((SIZE, SIZE), 1e-10), np.zeros((SIZE, SIZE)), np.zeros((SIZE, SIZE))
        for mask in masks:
            s = float(torch.cosine_similarity(embedder(images[:1] * mask)[0], ref, dim=0))
            m = mask[0].double().numpy()
            weight += m
            total += s * m
            squares += s * s * m
    importance = total / weight
    np.testing.assert_allclose(relax.importance[0], importance, atol=1e-5)
    np.testing.assert_allclose(relax.uncertainty[0], np.maximum(squares / weight - importance**2, 0), atol=1e-5)


def test_cosine_to_itself_has_zero_gradient_and_dot_does_not(embedder, images) -> None:
    with torch.no_grad():
        own = embedder(images)
    cosine = [camscope.SimilarityTarget(e, "cosine") for e in own]
    layer = [embedder.features[-1]]
    grads = []
    for targets in (cosine, own_embedding_targets(own)):
        cam = camscope.HiResCAM(embedder, layer)
        state = cam.forward_pass(images, targets)
        grads.append(state.layers[0].grads.abs().max().item())
    assert grads[0] < 1e-6 < grads[1]


def test_target_errors_are_clear() -> None:
    with pytest.raises(TargetError):
        camscope.SimilarityTarget(torch.zeros(4), kind="euclid")
    with pytest.raises(TargetError, match="dimensions"):
        camscope.SimilarityTarget(torch.ones(4))(torch.ones(2, 5))
    with pytest.raises(TargetError):
        camscope.CorpusTarget(torch.zeros(0, 4))
