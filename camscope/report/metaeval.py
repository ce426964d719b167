"""The report's meta-evaluation section: which metric to trust, at what cost — drawn from a metaeval folder's
``summary.json`` and ``metaeval.png`` (written by ``camscope metaeval``), so the report recomputes nothing."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from camscope.core.errors import InputError
from camscope.metaeval.perturb import FILL_WORDS
from camscope.metaeval.summary import PLOT_FILE, SUMMARY_FILE


def load_summary(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / SUMMARY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{folder} holds no {SUMMARY_FILE}: run `camscope metaeval --out {folder}` first") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is unreadable ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or "columns" not in data:
        raise InputError(f"{path} is not a camscope meta-evaluation summary")
    return data


def _removal_table(data: dict[str, Any]) -> str:
    """Per model, the median drop of the true class's probability when the object is removed (its twin) and
    when it is set to each constant fill ("" for a summary without them)."""

    def measured(drops: dict[str, Any]) -> bool:
        return any(v is not None and math.isfinite(float(v)) for v in drops.values())

    twin = data.get("evidence_drop") or {}
    fills = {fill: drops for fill, drops in (data.get("fill_drop") or {}).items() if measured(drops)}
    if not measured(twin):
        return ""
    head = "<tr><th>model</th><th>object-free twin</th>" + "".join(
        f"<th>object set to {html.escape(FILL_WORDS.get(f, f))} ({html.escape(f)})</th>" for f in fills
    )
    rows = [
        f'<tr><td>{html.escape(m)}</td><td class="num">{_num(twin.get(m))}</td>'
        + "".join(f'<td class="num">{_num(drops.get(m))}</td>' for drops in fills.values())
        + "</tr>"
        for m in data["models"]
    ]
    return (
        "<h3>What removing the object does (median drop of the true class's probability)</h3>"
        "<p>The pixel-removal metrics replace pixels with a constant; where the object set to that constant "
        "keeps the class (a small drop), such a metric cannot see the object's removal.</p>"
        f"<table>{head}</tr>{''.join(rows)}</table>"
    )


def _num(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):.{digits}f}"


def _tau(tau: dict[str, float]) -> str:
    if not math.isfinite(tau["value"]):
        return "n/a"
    return f"{tau['value']:+.2f} [{tau['low']:+.2f}, {tau['high']:+.2f}]"


def metaeval_section(folder: str | Path) -> str:
    """HTML: what was run, the per-column table, the per-model τ table, the plot and one finding per metric."""
    data = load_summary(folder)
    columns = data["columns"]
    head = (
        "<tr><th>metric column</th><th>better</th><th>τ vs known answer [95 % CI]</th>"
        "<th>oracle &gt; random &gt; inverse</th><th>noise resilience</th><th>adversary reactivity</th>"
        "<th>forwards / image·map</th><th>ms / image·map</th></tr>"
    )
    rows = []
    for c in columns:
        known = [m for m in c["models"] if m["discriminates"] is not None]
        passed = sum(1 for m in known if m["discriminates"])
        tau = "1 (is the known answer)" if c["is_ground_truth"] else _tau(c["tau"])
        rows.append(
            f"<tr><td>{html.escape(c['column'])}</td><td>{'↑' if c['higher_is_better'] else '↓'}</td>"
            f'<td class="num">{tau}</td><td class="num">{passed}/{len(known)}</td>'
            f'<td class="num">{_num(c["noise_resilience"])}</td><td class="num">{_num(c["adversary_reactivity"])}</td>'
            f'<td class="num">{_num(c["forwards"], 1)}</td><td class="num">{_num(c["seconds"] * 1000, 2)}</td></tr>'
        )
    models = data["models"]
    per_model = ["<tr><th>metric column</th>" + "".join(f"<th>{html.escape(m)}</th>" for m in models) + "</tr>"]
    for c in columns:
        by_model = {m["model"]: m for m in c["models"]}
        cells = []
        for name in models:
            m = by_model.get(name)
            mark = "" if m is None or m["discriminates"] is None else (" ✓" if m["discriminates"] else " ✗")
            cells.append(f'<td class="num">{"–" if m is None else _tau(m["tau"]) + mark}</td>')
        per_model.append(f"<tr><td>{html.escape(c['column'])}</td>{''.join(cells)}</tr>")
    plot = Path(folder) / PLOT_FILE
    removal = _removal_table(data)
    picture = (
        f'<img class="chart" alt="meta-evaluation" src="data:image/png;base64,'
        f'{base64.b64encode(plot.read_bytes()).decode("ascii")}">'
        if plot.is_file()
        else '<p class="muted">no plot in the folder</p>'
    )
    findings = "".join(f"<li>{html.escape(c['finding']).replace('**', '')}</li>" for c in columns)
    left_out = "".join(
        f"<li>{html.escape(name)}: {html.escape(reason)}</li>"
        for name, reason in (data["settings"].get("excluded_metrics") or {}).items()
    )
    settings = html.escape(json.dumps(data["settings"], sort_keys=True))
    return (
        "<p>Each metric ranks the maps (every method that applies, RandomCAM, the true mask and its inverse); the "
        "known answer ranks them by their energy inside the true object. τ: Kendall rank correlation of the two "
        "rankings (mean over models, percentile bootstrap over images). Noise resilience and adversary reactivity "
        "follow MetaQuantus (each in [0, 1], higher is better).</p>"
        f"<table>{head}{''.join(rows)}</table>"
        + (f"<p>Registered metrics left out of the run:</p><ul>{left_out}</ul>" if left_out else "")
        + f"<h3>τ per model (✓: oracle &gt; random &gt; inverse)</h3><table>{''.join(per_model)}</table>"
        + removal
        + f"{picture}<h3>Findings</h3><ul>{findings}</ul>"
        f'<p class="muted">settings: {settings}; computed in {data["compute_seconds"] / 60:.1f} min</p>'
    )
