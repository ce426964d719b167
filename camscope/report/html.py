"""``camscope report RESULTS_DIR``: one self-contained HTML file from a sweep's results store.

Self-contained means it opens offline, anywhere: every picture is a base64 PNG inside the file, the
styles are inline, and there is no script, font or style from a CDN. Sections: warnings (random
weights, failures), the seed's questions side by side (supervised vs self-supervised, CNN vs
transformer), per-metric tables of means with 95 % confidence intervals and the best method per
model marked, deletion/insertion curves, the image × model × method grid of overlays, the per-head
attention grid of token models, and the run metadata. A short inline script records how many images
rendered (``data-images-rendered`` on ``<body>``), so a browser test — or a curious user — can check the
page.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from camscope.core.errors import warn
from camscope.core.targets import CLASS_PROBABILITY, SIMILARITY
from camscope.metrics.registry import column as declared_column
from camscope.metrics.registry import higher_is_better
from camscope.models.mini import trained_accuracy
from camscope.report import charts
from camscope.report.stats import Estimate, best, difference, grouped
from camscope.sweep.store import RUN_FILE, ResultsStore, StoreError
from camscope.sweep.summary import failures

GROUPINGS = (
    ("training", "Supervised vs self-supervised", ("supervised", "self-supervised")),
    ("kind", "CNN vs transformer", ("cnn", "transformer")),
)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1300px;
color:#222;padding:0 16px}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0 16px} th,td{border:1px solid #ddd;padding:4px 8px;font-size:13px}
th{background:#f5f5f5;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.best{background:#e8f5e9;font-weight:bold} .muted{color:#777;font-size:12px}
.warn{background:#ffebee;border:1px solid #e57373;padding:8px 12px;border-radius:4px;margin:8px 0}
.grid td{padding:2px;text-align:center} .grid img{width:96px;height:96px;image-rendering:auto;display:block}
.chart{max-width:100%} .curves{display:flex;flex-wrap:wrap;gap:8px} nav a{margin-right:12px}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
"""

SELF_CHECK = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var rendered = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-total', String(images.length));
  document.body.setAttribute('data-images-rendered', String(rendered));
});
"""


def build_report(
    results: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    metaeval: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the HTML report of a results folder (default ``RESULTS/report.html``); returns its path.

    ``metaeval``: a ``camscope metaeval`` output folder, shown as the report's meta-evaluation section.

    A damaged store still gets its report: unreadable parts, maps files or ``run.json`` are skipped,
    each with a :class:`~camscope.core.errors.CamscopeWarning` and a count on the page
    (``camscope sweep --resume`` recomputes them).
    """
    store = ResultsStore(results)
    if not store.root.is_dir():
        raise StoreError(f"{store.root} does not exist or is not a folder")
    damaged: list[str] = []
    try:
        meta = store.metadata()
    except StoreError as exc:
        if "no run.json" in str(exc) and not (store.parts.is_dir() and any(store.parts.glob("*.parquet"))):
            raise
        meta = {}
        damaged.append(f"{RUN_FILE} (run metadata)")
        warn(f"{exc}: the report has no run metadata")
    skipped: list[Path] = []
    table = store.read(skipped=skipped)
    for part in skipped:
        damaged.append(str(part.relative_to(store.root)))
    if skipped:
        warn(f"skipped {len(skipped)} unreadable part file(s) in {store.root / 'parts'}; rerun the sweep with --resume")
    missing = missing_tasks(store, meta)
    if missing:
        warn(
            f"{missing} of {meta['tasks']} task(s) of this sweep have no results in {store.parts} "
            "(not run yet, interrupted, or deleted): the report lacks them; run the sweep again with --resume"
        )
    out = Path(output) if output else store.root / "report.html"
    page = render(store, meta, table, damaged, metaeval)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


def missing_tasks(store: ResultsStore, meta: dict[str, Any]) -> int:
    """How many of the sweep's tasks (``run.json``'s count) have no part file, readable or not."""
    expected = meta.get("tasks")
    if not isinstance(expected, int) or isinstance(expected, bool):
        return 0
    return max(0, expected - len(store.done()))


def render(
    store: ResultsStore,
    meta: dict[str, Any],
    table: pa.Table,
    damaged: list[str] | None = None,
    metaeval: str | os.PathLike[str] | None = None,
) -> str:
    damaged = damaged if damaged is not None else []
    extra: tuple[str, str, str] | None = None
    if metaeval is not None:  # first: a folder that is not a meta-evaluation fails before the heavy sections
        from camscope.report.metaeval import metaeval_section

        extra = ("metaeval", "Meta-evaluation: which metric to trust, at what cost", metaeval_section(Path(metaeval)))
    ok = table.filter(pc.equal(table["status"], "ok"))
    models = _ordered(ok, "model", meta.get("models", []))
    methods = _ordered(ok, "method", meta.get("methods", []))
    metrics = sorted({m for m in ok["metric"].to_pylist() if m is not None})
    stored = _stored_pictures(store, ok, damaged)
    sections = [
        ("models", "Models and their accuracy on these images", _models(ok, models, _random_weights(meta, table))),
        ("summary", "Supervised vs self-supervised, CNN vs transformer", _comparisons(ok, methods, metrics)),
        ("tables", "Means per metric (95 % CI)", _metric_tables(ok, models, methods, metrics)),
        ("curves", "Deletion and insertion curves", _curves(ok, models, methods)),
        ("grid", "What the models look at", _grid(stored, models, methods)),
        ("heads", "Attention heads of the token models", _heads(stored, models)),
        ("failures", "Failures", _failures(table, missing_tasks(store, meta), meta.get("tasks"))),
        ("warnings", "Warnings", _warning_rows(ok)),
        ("metadata", "Run metadata", _metadata(meta, table)),
    ]
    if extra is not None:
        sections.insert(3, extra)
    nav = " ".join(f'<a href="#{key}">{html.escape(title)}</a>' for key, title, _ in sections)
    body = "\n".join(f'<h2 id="{key}">{html.escape(title)}</h2>\n{content}' for key, title, content in sections)
    n_images = len(set(ok["image_id"].to_pylist()))
    lead = (
        f"{len(models)} model(s) × {len(methods)} method(s) × {n_images} image(s) × "
        f"{len(metrics)} metric column(s); {ok.num_rows} result rows."
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>camscope report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{CSS}</style></head>
<body>
<h1>camscope report</h1>
<p class="muted">{html.escape(str(store.root))} · config {html.escape(str(meta.get("config_hash")))}</p>
<p>{html.escape(lead)}</p>
{_warnings(meta, table, damaged, missing_tasks(store, meta))}
<nav>{nav}</nav>
{body}
<script>{SELF_CHECK}</script>
</body></html>
"""


# --------------------------------------------------------------------------- sections


def _random_weights(meta: dict[str, Any], table: pa.Table) -> list[str]:
    """The models this sweep ran untrained: named in the run's metadata or flagged on any result row."""
    from_rows = table.filter(pc.equal(table["random_weights"], True))["model"].unique().to_pylist()
    return list(dict.fromkeys([*(meta.get("random_weights") or []), *from_rows]))


def _warnings(meta: dict[str, Any], table: pa.Table, damaged: list[str], missing: int = 0) -> str:
    parts = []
    if missing:
        parts.append(
            f'<div class="warn" data-missing-tasks="{missing}"><strong>{missing} of {meta.get("tasks")} task(s) '
            "have no results</strong> (not run yet, interrupted, or their parts deleted): this report lacks them; "
            "<code>camscope sweep CONFIG --resume</code> computes them.</div>"
        )
    random = _random_weights(meta, table)
    if random:
        parts.append(
            f'<div class="warn"><strong>RANDOM WEIGHTS</strong> for {html.escape(", ".join(random))}: '
            "these models were not trained; their maps and scores describe no trained model.</div>"
        )
    fails = failures(table)
    if fails:
        parts.append(
            f'<div class="warn">{len(fails)} failed entr{"y" if len(fails) == 1 else "ies"}: '
            'see <a href="#failures">Failures</a>.</div>'
        )
    flagged = _flagged(table)
    if flagged:
        parts.append(
            f'<div class="warn" data-flagged="{len(flagged)}">{len(flagged)} result(s) carry a warning '
            '(NaN outputs, constant maps, clipped images …): see <a href="#warnings">Warnings</a>.</div>'
        )
    if damaged:
        items = "".join(f"<li>{html.escape(d)}</li>" for d in damaged)
        parts.append(
            f'<div class="warn" data-damaged="{len(damaged)}"><strong>{len(damaged)} unreadable file(s) skipped'
            "</strong> — their results are missing from this report; <code>camscope sweep CONFIG --resume</code> "
            f"moves them aside and recomputes them:<ul>{items}</ul></div>"
        )
    return "\n".join(parts)


def _flagged(table: pa.Table) -> list[dict[str, Any]]:
    """Distinct (model, method, image, warning) of the rows that carry a warning."""
    rows = table.filter(pc.is_valid(table["warnings"])).select(["model", "method", "image_id", "warnings"])
    return list({tuple(r.values()): r for r in rows.to_pylist()}.values())


def _warning_rows(ok: pa.Table) -> str:
    flagged = _flagged(ok)
    if not flagged:
        return "<p>None: no result was flagged.</p>"
    rows = "".join(
        _text_row(r["image_id"], r["model"], r["method"], r["warnings"])
        for r in sorted(flagged, key=lambda r: (r["model"], r["method"], r["image_id"]))
    )
    return (
        '<p class="muted">Results that were computed but look suspicious; their numbers are in the tables.</p>'
        f"<table><tr><th>image</th><th>model</th><th>method</th><th>warning</th></tr>{rows}</table>"
    )


def _models(ok: pa.Table, models: list[str], random: Collection[str] = ()) -> str:
    """Who was explained, and whether each model got these images right: a map of a wrong guess explains little.
    ``random``: the models run untrained (:func:`_random_weights`), which never show a shipped record's figure."""
    info = _model_info(ok)
    outcomes: dict[str, dict[str, bool]] = {}
    labelled, predicting = set(), set()  # models with any labelled image / any class prediction
    for row in ok.select(["model", "image_id", "label", "predicted"]).to_pylist():
        if row["label"] is not None:
            labelled.add(row["model"])
        if row["predicted"] is not None:
            predicting.add(row["model"])
        if row["label"] is not None and row["predicted"] is not None:
            outcomes.setdefault(row["model"], {})[row["image_id"]] = row["predicted"] == row["label"]
    rows = []
    for model in models:
        right = outcomes.get(model, {})
        hits = sum(right.values())
        if right:
            score = f"{hits} / {len(right)} ({100 * hits / len(right):.0f} %)"
        elif model not in predicting:  # a label-free sweep: the backbone's output is an embedding
            score = "– (backbone: no classes to score)"
        else:
            score = "– (no labelled images)" if model not in labelled else "–"
        rows.append(
            f"<tr><td>{html.escape(model)}</td><td>{html.escape(info.get(model, ''))}</td>"
            f'<td class="num">{score}</td><td>{_trained_to(model, model in random)}</td></tr>'
        )
    return (
        '<p class="muted">Top-1 accuracy on the images of this sweep that carry a label '
        "(every map explains the sweep's target, right or wrong). <em>Trained to</em>: a mini model's accuracy "
        "in the record beside its shipped weights (test accuracy; linear probe for a self-supervised one) "
        "against its target.</p>"
        "<table><tr><th>model</th><th>family · training · kind</th><th>correct</th><th>trained to</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _trained_to(model: str, random_weights: bool) -> str:
    """The shipped record's accuracy against the target; never a record's figure for weights it does not describe."""
    if random_weights:
        return "– (random weights: untrained)"
    trained = trained_accuracy(model)
    if trained is None:
        return "–"
    accuracy, target = trained
    if accuracy >= target:
        return f"{accuracy:.1f} % (target ≥ {target:g} %) ✔"
    return f"<strong>{accuracy:.1f} % (target ≥ {target:g} %) ✘ below target: explains a weaker classifier</strong>"


def _comparisons(ok: pa.Table, methods: list[str], metrics: list[str]) -> str:
    if not metrics:
        return "<p>No metric results.</p>"
    out = []
    for column, title, groups in GROUPINGS:
        present = [g for g in groups if g in set(ok[column].to_pylist())]
        values = grouped(ok, (column, "method", "metric"))
        overall = grouped(ok, (column, "metric"))
        missing = [g for g in groups if g not in present]
        note = f'<p class="muted">No {" / ".join(missing)} model in this sweep.</p>' if missing else ""
        others = sorted({str(v) for v in ok[column].to_pylist() if v is not None} - set(groups))
        if others:  # e.g. generator-paired minis: their own group, never pooled into either side
            note += f'<p class="muted">Not in either group: {html.escape(", ".join(others))} models.</p>'
        png = charts.comparison_chart(title, present, methods, metrics, values)
        pair = len(present) == 2
        rows = "".join(
            f"<tr><td>{html.escape(m)} ({'↑' if higher_is_better(m) else '↓'})</td>"
            + "".join(_cell(overall.get((g, m)), best_key=None) for g in present)
            + (_verdict(overall.get((present[0], m)), overall.get((present[1], m))) if pair else "")
            + "</tr>"
            for m in metrics
        )
        head = "".join(f"<th>{html.escape(g)}</th>" for g in present)
        if pair:
            head += f"<th>{html.escape(present[0])} − {html.escape(present[1])}</th>"
        out.append(
            f"<h3>{html.escape(title)}</h3>{note}{_img(png, title, 'chart')}"
            f"<table><tr><th>metric (all methods pooled)</th>{head}</tr>{rows}</table>"
        )
    return "\n".join(out)


def _metric_tables(ok: pa.Table, models: list[str], methods: list[str], metrics: list[str]) -> str:
    values = grouped(ok, ("model", "method", "metric"))
    info = _model_info(ok)
    out = []
    for metric in metrics:
        direction = "higher" if higher_is_better(metric) else "lower"
        head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
        rows = []
        for model in models:
            cells = {m: values.get((model, m, metric)) for m in methods}
            winners = best({m: e.mean for m, e in cells.items() if e is not None}, metric)
            rows.append(
                f"<tr><td>{html.escape(model)} <span class='muted'>{html.escape(info.get(model, ''))}</span>"
                "</td>" + "".join(_cell(cells[m], best_key=m in winners) for m in methods) + "</tr>"
            )
        out.append(
            f"<h3>{html.escape(metric)}</h3><p class='muted'>mean ± 95 % CI half-width over images; "
            f"{direction} is better; ★ best method per model</p>"
            f"<table><tr><th>model</th>{head}</tr>{''.join(rows)}</table>"
        )
    return "\n".join(out) or "<p>No metric results.</p>"


def _curves(ok: pa.Table, models: list[str], methods: list[str]) -> str:
    figures = []
    names = sorted({m for m in ok["metric"].to_pylist() if m is not None})
    for declared in (c for c in map(declared_column, names) if c is not None and c.curve):
        label = declared.curve
        rows = ok.filter(pc.and_(pc.equal(ok["metric"], declared.name), pc.is_valid(ok["curve"])))
        if not rows.num_rows:
            continue
        for model in models:
            part = rows.filter(pc.equal(rows["model"], model))
            curves = {}
            for method in methods:
                sel = part.filter(pc.equal(part["method"], method))
                if sel.num_rows:
                    ys = np.array(sel["curve"].to_pylist(), dtype=float)
                    curves[method] = (sel["curve_x"][0].as_py(), ys.mean(axis=0))
            if curves:
                # a label-free sweep's rows predict no class: its curves score the embedding similarity
                scored = CLASS_PROBABILITY if pc.any(pc.is_valid(part["predicted"])).as_py() else SIMILARITY
                png = charts.curves_chart(f"{model}: {label}", curves, declared.curve_x, scored)
                figures.append(_img(png, f"{model} {label} curves", "chart"))
    if not figures:
        return "<p>No deletion or insertion results in this sweep.</p>"
    return f'<div class="curves">{"".join(figures)}</div>'


@dataclass
class _Stored:
    """The pictures kept in the maps files: each model's view of the report images, the maps over them,
    and the per-head attention maps of token models."""

    views: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (model, image) -> (H, W, 3)
    maps: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)  # (model, method, image) -> (H, W)
    heads: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (model, image) -> (heads, h, w)


def _stored_pictures(store: ResultsStore, ok: pa.Table, damaged: list[str]) -> _Stored:
    stored = _Stored()
    for task in sorted(set(ok["task"].to_pylist())):
        try:
            arrays = store.maps(task)
        except StoreError as exc:
            warn(str(exc))
            damaged.append(f"maps/{task}.npz")
            continue
        if "view_ids" not in arrays:
            continue
        row = ok.filter(pc.equal(ok["task"], task)).slice(0, 1).to_pylist()[0]
        ids = list(arrays["ids"])
        for k, (image_id, view) in enumerate(zip(arrays["view_ids"], arrays["views"])):
            stored.views[(row["model"], str(image_id))] = view
            stored.maps[(row["model"], row["method"], str(image_id))] = arrays["maps"][ids.index(image_id)]
            if "head_maps" in arrays:
                stored.heads[(row["model"], str(image_id))] = arrays["head_maps"][k]
    return stored


def _grid(stored: _Stored, models: list[str], methods: list[str]) -> str:
    from camscope.viz import overlay

    views, maps = stored.views, stored.maps
    image_ids = sorted({i for _, i in views})
    if not image_ids:
        return "<p>No overlays stored (report_images = 0).</p>"
    out = [
        '<p class="muted">Each cell: the map over the image as the model saw it (after its preprocessing). '
        "Explained class: the sweep's target.</p>"
    ]
    head = "<th>model</th><th>input</th>" + "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    for image_id in image_ids:
        rows = []
        for model in models:
            view = views.get((model, image_id))
            if view is None:
                continue
            cells = [f"<td>{_img(_png(view), f'{image_id} as {model} sees it')}</td>"]
            for method in methods:
                cam = maps.get((model, method, image_id))
                picture = overlay(view, cam.astype(np.float32) / 255.0) if cam is not None else None
                cells.append(
                    f"<td>{_img(_png(picture), f'{model} {method} {image_id}')}</td>"
                    if picture is not None
                    else "<td>–</td>"
                )
            rows.append(f"<tr><td>{html.escape(model)}</td>{''.join(cells)}</tr>")
        out.append(f"<h3>{html.escape(image_id)}</h3><table class='grid'><tr>{head}</tr>{''.join(rows)}</table>")
    return "\n".join(out)


def _heads(stored: _Stored, models: list[str]) -> str:
    """DINO's picture, per token model and report image: each head's CLS→patch attention of the last block."""
    from camscope.viz import figure_to_array, head_grid

    if not stored.heads:
        return "<p>No token model with class-token attention in this sweep (or report_images = 0).</p>"
    out = [
        '<p class="muted">Each panel: one head\'s attention from the class token to the patches in the last '
        "block (class-attention block for CaiT / XCiT), min–max scaled per head, over the image as the model "
        "saw it. Heads that attend to different parts of the object are what DINO reports.</p>"
    ]
    for image_id in sorted({i for _, i in stored.heads}):
        for model in models:
            maps = stored.heads.get((model, image_id))
            view = stored.views.get((model, image_id))
            if maps is None or view is None:
                continue
            png = _png(figure_to_array(head_grid(view, maps, cell_inches=1.2)))
            out.append(f"<h3>{html.escape(image_id)} · {html.escape(model)}</h3>")
            out.append(_img(png, f"{model} attention heads {image_id}", "chart"))
    return "\n".join(out)


def _failures(table: pa.Table, missing: int = 0, tasks: Any = None) -> str:
    fails = failures(table)
    lacking = f"<p>{missing} of {html.escape(str(tasks))} task(s) have no results (never computed, or deleted).</p>"
    if not fails:
        return lacking if missing else "<p>None: every image of every task was computed.</p>"
    rows = "".join(_text_row(f.image_id, f.model, f.method, f.error) for f in fails)
    table_html = f"<table><tr><th>image</th><th>model</th><th>method</th><th>reason</th></tr>{rows}</table>"
    return (lacking if missing else "") + table_html


def _metadata(meta: dict[str, Any], table: pa.Table) -> str:
    versions = meta.get("versions", {})
    facts = [
        ("config hash", meta.get("config_hash")),
        ("engine", meta.get("engine")),
        ("device", meta.get("device")),
        ("runs (start times)", ", ".join(meta.get("runs", []))),
        ("tasks", meta.get("tasks")),
        *((f"{k} version", v) for k, v in sorted(versions.items())),
    ]
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    config = json.dumps(meta.get("config", {}), indent=2, sort_keys=True)
    return f"<table>{rows}</table><details><summary>config</summary><pre>{html.escape(config)}</pre></details>"


# --------------------------------------------------------------------------- helpers


def _ordered(table: pa.Table, column: str, preferred: Iterable[str]) -> list[str]:
    present = set(table[column].to_pylist())
    order = [p for p in preferred if p in present]
    return order + sorted(present - set(order))


def _model_info(table: pa.Table) -> dict[str, str]:
    info: dict[str, Any] = {}
    for row in table.select(["model", "family", "training", "kind"]).to_pylist():
        info.setdefault(row["model"], f"{row['family']} · {row['training']} · {row['kind']}")
    return info


def _text_row(*cells: str) -> str:
    """One table row of plain-text cells, each escaped."""
    return "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


def _verdict(a: Estimate | None, b: Estimate | None) -> str:
    """The difference of two groups and whether this many images resolve it (the demo's headline)."""
    if a is None or b is None:
        return '<td class="num">–</td>'
    d = difference(a, b)
    if math.isnan(d.half_width):
        return f'<td class="num">{d.mean:+.3f} (too few images for an interval)</td>'
    verdict = "resolved" if d.resolved else "not resolved: the interval includes 0; more images needed"
    return f'<td class="num">{d.mean:+.3f} ± {d.half_width:.3f} ({verdict})</td>'


def _cell(est: Estimate | None, best_key: bool | None) -> str:
    if est is None:
        return '<td class="num">–</td>'
    ci = "" if math.isnan(est.half_width) else f" ± {est.half_width:.3f}"
    mark = " ★" if best_key else ""
    css = "num best" if best_key else "num"
    return f'<td class="{css}" title="n = {est.n}">{est.mean:.3f}{ci}{mark}</td>'


def _png(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(picture, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _img(png: bytes, alt: str, css: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    cls = f' class="{css}"' if css else ""
    return f'<img{cls} alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
