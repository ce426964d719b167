"""Whole-image forwards run once: a memo shares the clean and substrate passes between metric calls.

What is asserted: the results equal the metrics without a memo, and the model sees exactly the rows
that are new (counted by a forward hook): the steps between a curve's ends, never an image twice.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from camscope.metrics import ForwardMemo, average_drop_increase, deletion, insertion, shared_forwards

N, SIDE, STEP = 3, 8, 16  # 64 pixels in steps of 16: curves of 5 points, 3 of them between the ends


class Counted(nn.Module):
    """A small CNN that counts the rows it is given."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * SIDE**2, 5))
        self.rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        out: torch.Tensor = self.net(x)
        return out


@pytest.fixture
def setup() -> tuple[Counted, torch.Tensor, list[np.ndarray]]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, 3, SIDE, SIDE, generator=g)
    maps = [torch.rand(N, SIDE, SIDE, generator=g).numpy() for _ in range(2)]  # two "methods"
    return Counted().eval(), x, maps


def test_results_equal_the_metrics_without_a_memo(setup):
    model, x, maps = setup
    plain = [
        (
            deletion(model, x, m, 2, step=STEP),
            insertion(model, x, m, 2, step=STEP),
            average_drop_increase(model, x, m, 2),
        )
        for m in maps
    ]
    with shared_forwards(model):
        shared = [
            (
                deletion(model, x, m, 2, step=STEP),
                insertion(model, x, m, 2, step=STEP),
                average_drop_increase(model, x, m, 2),
            )
            for m in maps
        ]
    for (d0, i0, a0), (d1, i1, a1) in zip(plain, shared):
        np.testing.assert_allclose(d1.curves, d0.curves, atol=1e-6)
        np.testing.assert_allclose(i1.curves, i0.curves, atol=1e-6)
        np.testing.assert_allclose(a1.explanation_scores, a0.explanation_scores, atol=1e-6)
        np.testing.assert_allclose(a1.scores, a0.scores, atol=1e-6)


def test_each_whole_image_runs_once(setup):
    model, x, maps = setup
    between = N * (SIDE * SIDE // STEP - 1)  # rows strictly between a curve's start and finish
    # one call alone: the clean images once (targets, deletion's start), the all-zeros substrate once
    # for all three images, then the steps between
    deletion(model, x, maps[0], 2, step=STEP)
    assert model.rows == N + 1 + between
    with shared_forwards(model):
        model.rows = 0
        deletion(model, x, maps[0], 2, step=STEP)
        insertion(model, x, maps[0], 2, step=STEP)  # + the blurred images
        assert model.rows == N + 1 + between + N + between
        model.rows = 0
        deletion(model, x, maps[1], 2, step=STEP)  # another method's map: only its own steps are new
        insertion(model, x, maps[1], 2, step=STEP)
        average_drop_increase(model, x, maps[1], 2)
        assert model.rows == 2 * between + N


def test_a_memo_keeps_to_its_model(setup):
    model, x, _ = setup
    memo = ForwardMemo(model)
    memo.remember(x, torch.zeros(N, 5))  # what the caller says the model gave
    with shared_forwards(model, memo):
        assert torch.equal(memo.logits(x, 2), torch.zeros(N, 5)) and model.rows == 0
    other = Counted().eval()
    with pytest.raises(ValueError, match="another model"), shared_forwards(other, memo):
        pass
    with shared_forwards(model, memo):  # a metric of another model inside the block runs it afresh
        deletion(other, x, np.ones((N, SIDE, SIDE), np.float32), 2, step=STEP)
    assert other.rows > 0 and len(memo) == N


def test_evaluate_shares_the_clean_forward_between_its_metrics():
    import camscope
    from camscope.data.synthetic import generate
    from camscope.models import load_model

    model = load_model("mini_resnet")
    rows: list[int] = []
    model.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    image = generate(1, 0).images[0]
    explanation = camscope.explain(model, image, "gradcam")
    rows.clear()
    steps = 4
    camscope.evaluate(model, image, explanation, ["deletion", "insertion", "avgdrop"], step=64 * 64 // steps)
    # the clean image once, the zeros and the blur once each, then each curve's steps between its ends
    # and average drop's explanation image
    assert sum(rows) == 1 + 1 + 1 + 2 * (steps - 1) + 1


def test_label_free_evaluate_runs_the_clean_images_once():
    """The embedding a label-free target is built from is the metrics' clean forward, not a pass of its own."""
    import camscope
    from camscope.data.synthetic import generate
    from camscope.models import load_model

    backbone = load_model("mini_resnet", head=False)
    rows: list[int] = []
    backbone.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    images = list(generate(2, 0).images)
    explanations = camscope.explain(backbone, images, "layercam", targets="embedding")
    rows.clear()
    steps = 4
    scores = camscope.evaluate(backbone, images, explanations, ["deletion"], targets="embedding", step=64 * 64 // steps)
    # the two clean images once, their all-zeros end once, then the steps between each curve's ends
    assert sum(rows) == 2 + 1 + 2 * (steps - 1)
    assert np.isfinite(scores["deletion_auc"]).all()
