"""Reference maps and perturbations: exact on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from camscope.metaeval.perturb import (
    FILLS,
    INVERSE,
    ORACLE,
    noisy_inputs,
    noisy_model,
    object_filled,
    reference_maps,
    shuffle_cells,
)


def test_reference_maps_are_the_mask_and_its_complement():
    mask = np.zeros((2, 4, 4), bool)
    mask[0, 1:3, 1:3] = True
    maps = reference_maps(mask)
    assert maps[ORACLE].dtype == np.float32 and (maps[ORACLE] == mask).all()
    assert (maps[INVERSE] == 1 - mask).all()


def test_shuffle_cells_permutes_whole_cells_and_keeps_the_remainder():
    maps = np.arange(2 * 9 * 9, dtype=np.float32).reshape(2, 9, 9)
    out = shuffle_cells(maps, 4, seed=3)
    assert not np.array_equal(out, maps)
    assert np.array_equal(out[:, 8, :], maps[:, 8, :]) and np.array_equal(out[:, :, 8], maps[:, :, 8])
    for i in range(2):
        cells = {maps[i, r : r + 4, c : c + 4].tobytes() for r in (0, 4) for c in (0, 4)}
        moved = {out[i, r : r + 4, c : c + 4].tobytes() for r in (0, 4) for c in (0, 4)}
        assert cells == moved  # the same cells, elsewhere
    assert np.array_equal(out, shuffle_cells(maps, 4, seed=3))
    assert np.array_equal(shuffle_cells(maps, 9, seed=3), maps)  # one cell: nothing to permute


def test_noisy_model_leaves_the_original_alone_and_noisy_inputs_scale_by_std():
    model = nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    twin = noisy_model(model, 0.1, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not torch.equal(twin.weight, model.weight)
    ratio = (twin.weight / model.weight).detach()
    assert float((ratio - 1).abs().max()) < 0.6
    x = torch.zeros(1, 3, 2, 2)
    assert torch.equal(noisy_inputs(x, 0.0, (0.5, 0.5, 0.5), seed=1), x)
    a, b = noisy_inputs(x, 0.1, (1.0, 1.0, 1.0), 1), noisy_inputs(x, 0.1, (0.5, 0.5, 0.5), 1)
    assert torch.allclose(b, 2 * a)


@pytest.mark.parametrize("fill", FILLS)
def test_object_filled_sets_every_channel_of_the_object_to_the_images_fill_and_nothing_else(fill):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 3, 8, 8, generator=g)
    masks = np.zeros((3, 8, 8), dtype=bool)
    masks[0, 2:5, 1:4] = True
    masks[1, 7, 7] = True  # image 2 has no object: it must come back unchanged
    out = object_filled(x, masks, fill)
    for i in range(3):  # the fill from its definition, image by image, pixel by pixel
        value = float(x[i].min()) if fill == "black" else float(x[i].mean())
        for c in range(3):
            for r in range(8):
                for col in range(8):
                    expected = value if masks[i, r, col] else float(x[i, c, r, col])
                    assert float(out[i, c, r, col]) == pytest.approx(expected, abs=1e-6)
