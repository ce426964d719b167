"""The default preset's metric settings: every fast setting is a parameter its metric takes, runs on the minis'
64 px scenes and keeps the metric within the budget's forwards; the metrics "every metric" leaves out are
registered ones, each with its reason, and still run when named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from camscope.metaeval.config import EXCLUDED_METRICS, FAST_METRIC_PARAMS, MetaevalConfig, preset
from camscope.metaeval.runner import counting_forwards
from camscope.metrics import get_metric, metric_names
from tests.metrics.conftest import tiny_cnn

MAX_FORWARDS = 16  # per image and map: what the preset's budget was sized with


@pytest.mark.parametrize("name", sorted(FAST_METRIC_PARAMS))
def test_each_fast_setting_runs_on_a_64px_scene_within_the_budget(name, torch_threads):
    metric = get_metric(name)
    params = FAST_METRIC_PARAMS[name]
    assert set(params) <= set(metric.params), f"{name} takes no {sorted(set(params) - set(metric.params))}"
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    maps = np.random.default_rng(0).random((2, 64, 64)).astype(np.float32)
    model = tiny_cnn()
    with torch_threads(1), counting_forwards(model) as count:
        result = metric(model, x, maps, [0, 1], **metric.accepted(batch_size=128), **params)
    scores = result.summary()
    assert [c.name for c in metric.columns if c.name in scores]  # a declared column came back
    assert all(np.isfinite(np.asarray(v, dtype=float)).all() for v in scores.values())
    assert 0 < count[0] / len(x) <= MAX_FORWARDS + 1  # +1: the clean forward most of them share


def test_every_metric_leaves_out_the_excluded_ones_with_their_reason_and_runs_a_named_one():
    registered = set(metric_names())
    assert set(EXCLUDED_METRICS) <= registered, "an excluded name that is no metric (renamed?) excludes nothing"
    assert all(len(reason) > 40 for reason in EXCLUDED_METRICS.values())
    config = preset("full")
    assert set(config.resolved_metrics()) == registered - set(EXCLUDED_METRICS)
    settings = config.as_dict()
    assert settings["excluded_metrics"] == {m: EXCLUDED_METRICS[m] for m in metric_names() if m in EXCLUDED_METRICS}
    assert set(settings["metric_params"]) == set(FAST_METRIC_PARAMS) & set(settings["metrics"])
    named = MetaevalConfig(models=("mini_resnet",), metrics=("irof",))
    assert named.resolved_metrics() == ("irof",) and named.excluded_metrics() == {}
    assert named.as_dict()["excluded_metrics"] == {}


def test_the_settings_hash_follows_what_a_part_holds_not_the_reasons_for_leaving_a_metric_out(monkeypatch):
    from camscope.metaeval import config as config_module

    full = preset("full")
    before = full.hash()
    monkeypatch.setitem(config_module.EXCLUDED_METRICS, "irof", "another wording")
    assert full.hash() == before and full.as_dict()["excluded_metrics"]["irof"] == "another wording"
    monkeypatch.delitem(config_module.EXCLUDED_METRICS, "irof")
    assert full.hash() != before  # irof is now run: the parts differ
