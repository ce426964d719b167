"""Helpers of the sweep and report tests: a tiny sweep config and comparison of result sets."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest


def tiny_models() -> list[dict]:
    """A CNN and a transformer from the mini zoo, untrained (wiring only: fast and seeded)."""
    return [{"name": "mini_resnet", "random_weights": True}, {"name": "mini_deit", "random_weights": True}]


def toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers, booleans: TOML and JSON agree here


def write_config(path: Path, **overrides: object) -> Path:
    """Write a sweep TOML file: the tiny defaults, with top-level keys or whole sections replaced."""
    config: dict = {
        "output": "results",
        "methods": ["gradcam", "eigencam"],
        "models": tiny_models(),
        "shard_size": 2,
        "report_images": 2,
        "images": {"source": "synthetic:4", "seed": 3},
        "metrics": {"deletion": {"step": 512}, "insertion": {"step": 512}, "pointing": {}},
    }
    config.update(overrides)
    lines = [f"{k} = {toml_value(v)}" for k, v in config.items() if k not in ("images", "metrics")]
    if "images" in config:
        lines.append("[images]")
        lines += [f"{k} = {toml_value(v)}" for k, v in config["images"].items()]
    for name, params in config.get("metrics", {}).items():
        lines.append(f"[metrics.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in params.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


KEY = ("model", "method", "image_id", "metric")


def result_set(table: pa.Table) -> dict[tuple, dict]:
    """Rows keyed by (model, method, image, metric), without the timing column; asserts keys are unique."""
    rows = table.drop_columns(["cam_seconds"]).to_pylist()
    keyed = {tuple(r[k] for k in KEY): r for r in rows}
    assert len(keyed) == len(rows), "duplicated rows"
    return keyed


def assert_same_results(a: pa.Table, b: pa.Table, tol: float = 1e-5) -> None:
    ra, rb = result_set(a), result_set(b)
    assert ra.keys() == rb.keys()
    for key, row in ra.items():
        other = rb[key]
        for column, value in row.items():
            if isinstance(value, float) or (isinstance(value, list) and value and isinstance(value[0], float)):
                assert other[column] == pytest.approx(value, abs=tol), (key, column)
            else:
                assert other[column] == value, (key, column)
