"""The findings' words follow the numbers: a column that no shuffling of the maps' cells can move says so."""

from __future__ import annotations

import pyarrow as pa

from camscope.metaeval.summary import summarize
from tests.metaeval.helpers import SETTINGS, fake_rows


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
