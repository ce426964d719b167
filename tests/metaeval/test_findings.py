"""The findings' words follow the numbers: a column that no shuffling of the maps' cells can move says so."""

from __future__ import annotations

import pyarrow as pa

from camscope.metaeval.summary import settings_sentence, summarize
from tests.metaeval.helpers import SETTINGS, fake_rows, fill_rows


def test_a_column_blind_to_where_the_values_lie_is_named_and_one_that_moves_is_not():
    rows = fake_rows().to_pylist()
    clean = {(r["method"], r["image_index"]): r["value"] for r in rows if r["condition"] == "clean"}
    for r in rows:
        if r["column"] == "deletion_auc" and r["condition"] == "disrupted":
            r["value"] = clean[(r["method"], r["image_index"])]  # what a statistic of the values alone gives
    blind = {c.column: c for c in summarize(pa.Table.from_pylist(rows, schema=fake_rows().schema), SETTINGS).columns}
    assert blind["deletion_auc"].position_blind and blind["deletion_auc"].adversary_reactivity == 0
    assert "0 by construction" in blind["deletion_auc"].finding
    assert not blind["energy_pointing"].position_blind and "0 by construction" not in blind["energy_pointing"].finding
    moved = {c.column: c for c in summarize(fake_rows(), SETTINGS).columns}
    assert not moved["deletion_auc"].position_blind and "0 by construction" not in moved["deletion_auc"].finding


def test_a_metric_filling_with_a_constant_reports_what_filling_the_whole_object_does():
    summary = summarize(fill_rows(black=0.01, mean=0.6), {**SETTINGS, "metrics": ["pixel_flipping", "energy_pointing"]})
    by_column = {c.column: c for c in summary.columns}
    flipping = by_column["pixel_flipping"].finding
    assert "the image's darkest value ('black')" in flipping and "by a median 0.01–0.01" in flipping
    assert "against 0.90–0.90 for the object-free twin" in flipping and "keeps most of the evidence" in flipping
    assert "object-free twin" not in by_column["energy_pointing"].finding  # no fill: no sentence
    assert summary.fill_drop == {"black": {"mini_resnet": 0.01}, "mean": {"mini_resnet": 0.6}}
    assert (
        "to the image's darkest value ('black') drops it by 0.01–0.01, to the image's mean value"
        in settings_sentence(summary)
    )


def test_the_fill_sentence_follows_the_run_s_baseline_and_claims_nothing_the_numbers_do_not_show():
    settings = {
        **SETTINGS,
        "metrics": ["pixel_flipping"],
        "metric_params": {"pixel_flipping": {"perturb_baseline": "mean"}},
    }
    finding = {c.column: c for c in summarize(fill_rows(black=0.01, mean=0.6), settings).columns}["pixel_flipping"]
    assert "the image's mean value ('mean')" in finding.finding and "by a median 0.60–0.60" in finding.finding
    assert "keeps most of the evidence" not in finding.finding  # 0.6 is not under half of 0.9
    uniform = {**settings, "metric_params": {"pixel_flipping": {"perturb_baseline": "uniform"}}}
    unmeasured = {c.column: c for c in summarize(fill_rows(0.01, 0.6), uniform).columns}["pixel_flipping"]
    assert "object-free twin" not in unmeasured.finding  # a fill the run did not measure: nothing said
