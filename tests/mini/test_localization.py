"""Methods find the evidence: pointing game of CAM methods on the mini zoo against the true masks."""

from __future__ import annotations

import pytest

from camscope.data.synthetic import generate
from camscope.models import load_model
from camscope.testing.localization import LOCALIZATION_N, LOCALIZATION_SEED, TOLERANCE, pointing_accuracy


@pytest.fixture(scope="module")
def images():
    return generate(LOCALIZATION_N, LOCALIZATION_SEED)


@pytest.mark.parametrize(
    ("name", "method", "margin"),
    [
        ("mini_resnet", "gradcam", 30.0),
        # A trained token model, through the zoo's reshape transform. Grad-CAM does not find the object
        # here (about RandomCAM's rate; see the README table): XCiT's last block feeds class-attention
        # layers, and one gradient average per channel loses where the evidence is, while LayerCAM's
        # element-wise weighting keeps it.
        ("mini_xcit", "layercam", 20.0),
        # The transformer-native maps on trained token models: the class attention of the last block
        # (XCiT: its class-attention layers; CaiT: its class-attention blocks, about 49 % accurate, where
        # Grad-CAM points below the random floor) and rollout through every block.
        ("mini_xcit", "attention", 20.0),
        ("mini_xcit", "rollout", 20.0),
        ("mini_cait", "attention", 30.0),
    ],
)
def test_method_points_at_the_object(images, name, method, margin):
    """≥ 85 % of the method's maxima within TOLERANCE px of the object; random channel weights far below."""
    model = load_model(name)
    hits = pointing_accuracy(model, method, images)
    random = pointing_accuracy(model, "randomcam", images)
    print(f"{name} pointing game ({TOLERANCE} px): {method} {hits:.1f}%, randomcam {random:.1f}%")
    assert hits >= 85.0
    assert random <= hits - margin
