"""Aggregates of a results table: the terminal summary and the failures list.

Means are taken over images with ``pyarrow``'s group-by, so summarising millions of rows stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True, order=True)
class Failure:
    model: str
    method: str
    image_id: str
    error: str


def means(table: pa.Table, keys: tuple[str, ...] = ("model", "method", "metric")) -> pa.Table:
    """Mean, standard deviation and count of ``value`` per group of ``keys`` (successful rows only)."""
    ok = table.filter(pc.and_(pc.equal(table["status"], "ok"), pc.is_valid(table["value"])))
    return ok.group_by(list(keys), use_threads=False).aggregate(
        [("value", "mean"), ("value", "stddev", pc.VarianceOptions(ddof=1)), ("value", "count")]
    )


def failures(table: pa.Table) -> list[Failure]:
    rows = table.filter(pc.equal(table["status"], "failed")).select(["model", "method", "image_id", "error"])
    return sorted(Failure(**r) for r in rows.to_pylist()) if rows.num_rows else []


def summary_text(table: pa.Table, max_failures: int = 20) -> str:
    """Model × method rows, one column per metric (mean over images), then the failures."""
    grouped = means(table).to_pylist()
    metrics = sorted({g["metric"] for g in grouped})
    cells = {(g["model"], g["method"], g["metric"]): g["value_mean"] for g in grouped}
    pairs = list(dict.fromkeys((g["model"], g["method"]) for g in grouped))
    lines = []
    if pairs:
        w_model = max(5, *(len(m) for m, _ in pairs))
        w_method = max(6, *(len(m) for _, m in pairs))
        widths = [max(8, len(m)) for m in metrics]
        lines.append(
            "  ".join(
                [f"{'model':<{w_model}}", f"{'method':<{w_method}}"] + [f"{m:>{w}}" for m, w in zip(metrics, widths)]
            )
        )
        for model, method in sorted(pairs):
            values = [cells.get((model, method, m)) for m in metrics]
            lines.append(
                "  ".join(
                    [f"{model:<{w_model}}", f"{method:<{w_method}}"]
                    + [f"{v:>{w}.4f}" if v is not None else f"{'-':>{w}}" for v, w in zip(values, widths)]
                )
            )
    else:
        lines.append("(no successful results)")
    flagged = table.filter(pc.is_valid(table["warnings"])) if "warnings" in table.column_names else None
    if flagged is not None and flagged.num_rows:
        flagged_results = {
            (r["model"], r["method"], r["image_id"])
            for r in flagged.select(["model", "method", "image_id"]).to_pylist()
        }
        lines.append(f"\n{len(flagged_results)} result(s) carry a warning (column 'warnings'; listed in the report)")
    fails = failures(table)
    if fails:
        images = {(f.image_id, f.error) for f in fails}
        entries = "entry" if len(fails) == 1 else "entries"
        lines.append(f"\n{len(fails)} failed {entries} ({len(images)} image/reason pairs):")
        for image_id, error in sorted(images)[:max_failures]:
            lines.append(f"  {image_id}: {error}")
        if len(images) > max_failures:
            lines.append(f"  ... and {len(images) - max_failures} more (see the report)")
    return "\n".join(lines)
