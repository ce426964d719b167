"""A made-up meta-evaluation, for tests of what reads one (summary, README block, report section): no model runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from camscope.metaeval.runner import SCHEMA

SETTINGS: dict[str, Any] = {
    "models": ["mini_resnet"],
    "seed": 11,
    "metrics": ["deletion", "energy_pointing"],
    "perturbations": ["input"],
    "input_noise": 0.01,
    "model_noise": 0.01,
    "disrupt_cell": 8,
    "bootstrap": 100,
    "metric_params": {},
}


def fake_rows() -> pa.Table:
    """Rows of a made-up run: 1 model, 5 images, 4 maps, two columns (one is the known answer itself)."""
    rng = np.random.default_rng(0)
    truth = {"oracle": 1.0, "gradcam": 0.6, "randomcam": 0.2, "inverse": 0.0}
    rows = []
    for condition in ("clean", "input", "disrupted"):
        for method, energy in truth.items():
            for i in range(5):
                g = energy if condition != "disrupted" else rng.uniform()
                for metric, column, value in (
                    ("energy_pointing", "energy_pointing", g),
                    ("deletion", "deletion_auc", 1 - g + rng.normal(0, 0.1)),
                ):
                    rows.append(
                        {
                            "model": "mini_resnet",
                            "image_index": i,
                            "method": method,
                            "condition": condition,
                            "metric": metric,
                            "column": column,
                            "value": value,
                            "gt_energy": g,
                            "status": "ok",
                            "label": 0,
                            "predicted": 0,
                            "seconds": 0.001,
                            "forwards": 2.0,
                        }
                    )
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def fill_rows(black: float, mean: float) -> pa.Table:
    """The made-up run with its deletion column renamed to pixel flipping (a metric filling with 'black' by
    default), every image's object-free twin dropping the true class by 0.9, and the given fill drops."""
    rows = fake_rows().to_pylist()
    for r in rows:
        if r["metric"] == "deletion":
            r["metric"] = r["column"] = "pixel_flipping"
        r.update(evidence_drop=0.9, fill_drop_black=black, fill_drop_mean=mean)
    return pa.Table.from_pylist(rows, schema=fake_rows().schema)
