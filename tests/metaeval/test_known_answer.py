"""Known-answer properties on a trained mini: where a metric must put the true mask above a random map above
the mask's inverse, it does (through the registry, as the meta-evaluation calls it)."""

from __future__ import annotations

import numpy as np
import pytest

from camscope.metaeval.perturb import INVERSE, ORACLE, reference_maps
from camscope.metaeval.stats import discriminates
from camscope.metrics import get_metric
from camscope.metrics.registry import higher_is_better

pytestmark = pytest.mark.slow  # a trained mini over 16 images, ~20 forwards per image and map


@pytest.fixture(scope="module")
def scored(torch_threads) -> dict[str, dict[str, float]]:
    """{column: {map: mean oriented score}} for deletion, insertion and energy pointing on mini_resnet."""
    import camscope
    from camscope.data.synthetic import generate, to_input
    from camscope.methods import get_method
    from camscope.models import get_spec

    data = generate(16, 11)
    spec = get_spec("mini_resnet")
    with torch_threads(1):
        model = camscope.load_model("mini_resnet").eval()
        x = to_input(data.images, spec.mean, spec.std)
        layers, reshape = spec.cam_layers(model)
        labels = [int(c) for c in data.labels]
        maps = {**reference_maps(data.masks), "random": get_method("randomcam")(model, layers, reshape)(x, labels)}
        out: dict[str, dict[str, float]] = {}
        for name, params in (("deletion", {"step": 512}), ("insertion", {"step": 512}), ("energy_pointing", {})):
            metric = get_metric(name)
            kwargs = {**metric.accepted(mean=spec.mean, std=spec.std), **params}
            for key, m in maps.items():
                result = metric(model, x, np.asarray(m), labels, ground_truth=data.masks, **kwargs)
                for column, values in result.summary().items():
                    sign = 1.0 if higher_is_better(column) else -1.0
                    out.setdefault(column, {})[key] = sign * float(np.mean(values))
    return out


@pytest.mark.parametrize("column", ["deletion_auc", "insertion_auc", "energy_pointing"])
def test_oracle_beats_random_beats_inverse_on_mini_resnet(scored, column):
    s = scored[column]
    assert discriminates(s[ORACLE], s["random"], s[INVERSE]), s
