"""From stored rows to what a user reads: per metric column and model, agreement with the known answer,
discrimination, consistency and cost; the table, one finding per metric, the JSON the report draws from.

Every number is computed from the rows of :mod:`camscope.metaeval.runner`; directions come from each
column's declaration in the metric registry (scores are oriented so that higher is better before
ranking).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from camscope.metaeval.perturb import FILL_WORDS, FILLS, INVERSE, ORACLE, RANDOM
from camscope.metaeval.runner import CLEAN, DISRUPTED, FLIPPED
from camscope.metaeval.stats import Consistency, Interval, bootstrap_interval, consistency, discriminates, kendall_tau
from camscope.metrics.registry import higher_is_better

SUMMARY_FILE = "summary.json"
TABLE_FILE = "metaeval.md"
PLOT_FILE = "metaeval.png"
LIMITS = (
    "one synthetic task (ten shapes on clutter, 64 px), small models, maps explaining the true class; the known "
    "answer is the map's energy inside the object, which rewards localisation, not faithfulness to a model that "
    "may also use context"
)


@dataclass
class ModelResult:
    """One metric column on one model."""

    model: str
    tau: Interval
    discriminates: bool | None  # None: the run has no random map or no reference maps
    oracle: float
    random: float
    inverse: float
    consistency: Consistency
    images: int
    maps: int


@dataclass
class ColumnResult:
    """One metric column over every model: the table's row and its finding."""

    column: str
    metric: str
    higher_is_better: bool
    tau: Interval  # the mean over models of the per-model τ, bootstrapped over images
    models: list[ModelResult]
    noise_resilience: float
    adversary_reactivity: float
    meta_consistency: float
    seconds: float  # per image and map (median over calls, clean condition)
    forwards: float
    skipped: int  # rows that could not be scored (ground truth missing, the metric refused the input)
    failed: int
    is_ground_truth: bool  # its values are the known answer itself (energy inside the object)
    reasons: list[str] = field(default_factory=list)
    position_blind: bool = False  # shuffling the maps' cells leaves every score unchanged
    finding: str = ""

    @property
    def discriminating(self) -> list[str]:
        return [m.model for m in self.models if m.discriminates]


@dataclass
class Summary:
    settings: dict[str, Any]
    models: list[str]
    methods: dict[str, list[str]]  # per model: the maps ranked (methods and references)
    columns: list[ColumnResult]
    compute_seconds: float  # wall seconds of the parts
    images: dict[str, int]
    flipped: dict[str, dict[str, int]]  # model -> condition -> images whose prediction flipped
    evidence_drop: dict[str, float]  # model -> median drop of the true class's probability without the object
    # fill -> model -> median drop with the object set to that constant fill ({} for a folder without them)
    fill_drop: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu_seconds: float | None = None  # CPU seconds of the parts (None: not recorded by every part)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


# --------------------------------------------------------------------------- the arrays


@dataclass
class _Block:
    """One (model, column): oriented scores and ground truth as (images, maps) per condition."""

    scores: dict[str, np.ndarray]
    truth: np.ndarray  # clean gt_energy (images, maps)
    raw: np.ndarray  # clean values, not oriented
    maps: list[str]
    images: np.ndarray  # which global image positions have rows


def _blocks(table: pa.Table) -> tuple[dict[tuple[str, str], _Block], list[int]]:
    cols = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    image_ids = sorted(set(cols["image_index"].tolist()))
    position = {v: i for i, v in enumerate(image_ids)}
    blocks: dict[tuple[str, str], _Block] = {}
    keys = np.array([f"{m}|{c}" for m, c in zip(cols["model"], cols["column"])], dtype=object)
    for key in dict.fromkeys(keys.tolist()):
        model, column = key.split("|", 1)
        sel = keys == key
        methods = list(dict.fromkeys(cols["method"][sel].tolist()))
        m_index = {m: k for k, m in enumerate(methods)}
        n = len(image_ids)
        sign = 1.0 if higher_is_better(column) else -1.0
        scores: dict[str, np.ndarray] = {}
        truth = np.full((n, len(methods)), np.nan)
        raw = np.full((n, len(methods)), np.nan)
        for condition in dict.fromkeys(cols["condition"][sel].tolist()):
            rows = np.flatnonzero(sel & (cols["condition"] == condition))
            grid = np.full((n, len(methods)), np.nan)
            i = np.array([position[v] for v in cols["image_index"][rows]])
            j = np.array([m_index[v] for v in cols["method"][rows]])
            values = cols["value"][rows].astype(np.float64)
            flipped = np.array([f == FLIPPED for f in cols["flag"][rows]])
            ok = (cols["status"][rows] == "ok") & ~flipped
            grid[i, j] = np.where(ok, values * sign, np.nan)
            scores[condition] = grid
            if condition == CLEAN:
                truth[i, j] = cols["gt_energy"][rows]
                raw[i, j] = np.where(ok, values, np.nan)
        present = np.flatnonzero(np.isfinite(truth).any(axis=1))
        blocks[(model, column)] = _Block(scores, truth, raw, methods, present)
    return blocks, image_ids


def _nanmean(values: np.ndarray, axis: int | None = None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _tau(block: _Block, idx: np.ndarray) -> float:
    idx = idx[np.isin(idx, block.images)]
    if not len(idx):
        return float("nan")
    return kendall_tau(_nanmean(block.scores[CLEAN][idx], 0), _nanmean(block.truth[idx], 0))


def _position_blind(blocks: list[_Block]) -> bool:
    """Whether the disrupted maps score exactly like the clean ones: the metric reads a map's values (a
    statistic of their distribution), not where they lie, so no shuffling can move it."""
    pairs = [(b.scores[CLEAN], b.scores[DISRUPTED]) for b in blocks if DISRUPTED in b.scores]
    return bool(pairs) and all(
        np.isfinite(c).any() and np.allclose(c, d, rtol=1e-6, atol=1e-9, equal_nan=True) for c, d in pairs
    )


def _model_result(model: str, block: _Block, resamples: int) -> ModelResult:
    tau = bootstrap_interval(len(block.images), lambda i: _tau(block, block.images[i]), resamples=resamples)
    means = _nanmean(block.scores[CLEAN], 0)

    def mean_of(name: str) -> float:
        return float(means[block.maps.index(name)]) if name in block.maps else float("nan")

    oracle, random, inverse = mean_of(ORACLE), mean_of(RANDOM), mean_of(INVERSE)
    known = all(name in block.maps for name in (ORACLE, RANDOM, INVERSE))
    minor = [v for k, v in block.scores.items() if k not in (CLEAN, DISRUPTED)]
    clean = block.scores[CLEAN][block.images]
    cons = consistency(
        clean,
        [v[block.images] for v in minor],
        block.scores.get(DISRUPTED, np.full_like(block.scores[CLEAN], np.nan))[block.images],
    )
    return ModelResult(
        model,
        tau,
        discriminates(oracle, random, inverse) if known else None,
        oracle,
        random,
        inverse,
        cons,
        len(block.images),
        len(block.maps),
    )


def summarize(
    table: pa.Table, settings: dict[str, Any], compute_seconds: float = 0.0, cpu_seconds: float | None = None
) -> Summary:
    """The summary of a meta-evaluation's rows (see :func:`camscope.metaeval.runner.read_rows`)."""
    resamples = int(settings.get("bootstrap", 1000))
    blocks, image_ids = _blocks(table)
    present = set(table.column("model").to_pylist())
    models = [m for m in settings.get("models", []) if m in present] + sorted(present - set(settings.get("models", [])))
    column_names = list(dict.fromkeys(table.column("column").to_pylist()))
    metric_of = dict(zip(table.column("column").to_pylist(), table.column("metric").to_pylist()))
    status = np.asarray(table.column("status").to_pylist(), dtype=object)
    flags = table.column("flag").to_pylist()
    column_array = np.asarray(table.column("column").to_pylist(), dtype=object)
    condition = np.asarray(table.column("condition").to_pylist(), dtype=object)
    seconds = table.column("seconds").to_numpy(zero_copy_only=False)
    forwards = table.column("forwards").to_numpy(zero_copy_only=False)
    results = []
    for column in column_names:
        per_model = [_model_result(m, blocks[(m, column)], resamples) for m in models if (m, column) in blocks]
        own = [blocks[(m, column)] for m in models if (m, column) in blocks]

        def pooled(idx: np.ndarray, own: list[_Block] = own) -> float:
            return float(_nanmean(np.array([_tau(b, idx) for b in own])))

        sel = column_array == column
        clean = sel & (condition == CLEAN)
        reasons = sorted({f for f, s in zip(np.asarray(flags, dtype=object)[sel], status[sel]) if s != "ok" and f})
        identical = all(np.allclose(b.raw, b.truth, equal_nan=True) for b in own)
        results.append(
            ColumnResult(
                column=column,
                metric=str(metric_of[column]),
                higher_is_better=higher_is_better(column),
                tau=bootstrap_interval(len(image_ids), pooled, resamples=resamples),
                models=per_model,
                noise_resilience=float(_nanmean(np.array([r.consistency.noise_resilience for r in per_model]))),
                adversary_reactivity=float(_nanmean(np.array([r.consistency.adversary_reactivity for r in per_model]))),
                meta_consistency=float(_nanmean(np.array([r.consistency.meta_consistency for r in per_model]))),
                seconds=float(np.nanmedian(seconds[clean])) if np.isfinite(seconds[clean]).any() else float("nan"),
                forwards=float(np.nanmedian(forwards[clean])) if np.isfinite(forwards[clean]).any() else float("nan"),
                skipped=int(((status == "skipped") & sel).sum()),
                failed=int(((status == "failed") & sel).sum()),
                is_ground_truth=identical,
                reasons=reasons[:3],
                position_blind=_position_blind(own),
            )
        )
    summary = Summary(
        settings=settings,
        models=models,
        methods={m: blocks[(m, column_names[0])].maps for m in models if (m, column_names[0]) in blocks},
        columns=results,
        compute_seconds=compute_seconds,
        images={m: len(blocks[(m, column_names[0])].images) for m in models if (m, column_names[0]) in blocks},
        flipped=_flipped(table),
        evidence_drop=_per_image_median(table, "evidence_drop"),
        fill_drop={
            fill: _per_image_median(table, f"fill_drop_{fill}")
            for fill in FILLS
            if f"fill_drop_{fill}" in table.column_names
        },
        cpu_seconds=cpu_seconds,
    )
    for result in results:
        result.finding = finding(result, summary)
    return summary


def _flipped(table: pa.Table) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    seen: set[tuple[str, str, int]] = set()
    for row in table.select(["model", "condition", "image_index", "flag"]).to_pylist():
        key = (row["model"], row["condition"], row["image_index"])
        if row["flag"] == FLIPPED and key not in seen:
            seen.add(key)
            out.setdefault(row["model"], {}).setdefault(row["condition"], 0)
            out[row["model"]][row["condition"]] += 1
    return out


def _per_image_median(table: pa.Table, name: str) -> dict[str, float]:
    """model -> the median over images of a per-image column (repeated on every row of the image)."""
    drops: dict[str, dict[int, float]] = {}
    for row in table.select(["model", "image_index", name]).to_pylist():
        drops.setdefault(row["model"], {})[row["image_index"]] = row[name]
    return {m: float(np.median([d for d in v.values() if d is not None] or [np.nan])) for m, v in drops.items()}


def _span(per_model: dict[str, float]) -> str:
    """'a–b' of the finite per-model values ('' when none is finite)."""
    values = [v for v in per_model.values() if np.isfinite(v)]
    return f"{min(values):.2f}–{max(values):.2f}" if values else ""


def _fill_sentence(result: ColumnResult, summary: Summary) -> str:
    """For a metric that removes features with a constant fill whose removal of the whole object was measured:
    how much that removal drops the true class's probability, against the object-free twin."""
    from camscope.metrics import get_metric

    own = (summary.settings.get("metric_params") or {}).get(result.metric, {})
    try:
        fill = own.get("perturb_baseline", get_metric(result.metric).default("perturb_baseline"))
    except KeyError:  # a metric no longer registered: its default is unknown
        return ""
    drops = (summary.fill_drop.get(fill) or {}) if isinstance(fill, str) else {}
    filled, removed = _span(drops), _span(summary.evidence_drop)
    if not filled or not removed:
        return ""
    measured = [v for v in drops.values() if np.isfinite(v)]
    rises = " (negative: the filled object raises it)" if min(measured) < 0 else ""
    sentence = (
        f"It removes features by setting them to {FILL_WORDS.get(fill, repr(fill))} ({fill!r}); setting the whole "
        f"object so drops the true class's probability by a median {filled} across models{rises}, against "
        f"{removed} for the object-free twin"
    )
    # "most": even where the fill removes the most, it removes under half of what the typical twin does
    typical_removal = float(np.nanmedian(list(summary.evidence_drop.values())))
    kept = max(measured) < 0.5 * typical_removal
    ending = ": the filled object (its silhouette stays) keeps most of the evidence the metric means to remove."
    return sentence + (ending if kept else ".")


# --------------------------------------------------------------------------- words


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"


def finding(result: ColumnResult, summary: Summary) -> str:
    """One paragraph: the agreement with its interval, discrimination, consistency, cost, and the limits."""
    direction = "higher" if result.higher_is_better else "lower"
    n_models = len(result.models)
    taus = [m.tau.value for m in result.models if np.isfinite(m.tau.value)]
    spread = f"; per model {min(taus):+.2f} … {max(taus):+.2f}" if len(taus) > 1 else ""
    known = [m for m in result.models if m.discriminates is not None]
    failing = [m.model for m in known if not m.discriminates]
    images = sorted(set(summary.images.values()))
    parts = [f"**{result.column}** ({result.metric}, {direction} is better)"]
    if result.is_ground_truth:
        parts.append(
            "is the known answer itself (the map's energy inside the object): its agreement is 1 by construction and "
            "says nothing about the metric; read its discrimination and cost only."
        )
    elif not np.isfinite(result.tau.value):
        parts.append("could not be ranked against the known answer (no finite scores).")
    else:
        parts.append(
            f"ranks the maps like the known answer with Kendall τ = {result.tau.value:+.2f} "
            f"(95 % bootstrap interval {result.tau.low:+.2f} … {result.tau.high:+.2f}, mean over {n_models} "
            f"model(s){spread})."
        )
    if known:
        verdict = f"It puts oracle > RandomCAM > inverse on {len(known) - len(failing)} of {len(known)} model(s)"
        parts.append(verdict + (f" (not on {', '.join(failing)})." if failing else "."))
    parts.append(
        f"Noise resilience {_fmt(result.noise_resilience)} (scores kept under small input/weight noise), adversary "
        f"reactivity {_fmt(result.adversary_reactivity)} (scores moved when the maps' cells are shuffled); "
        f"cost {_fmt(result.forwards, 1)} forwards and {_fmt(result.seconds * 1000, 1)} ms per image and map."
    )
    if result.position_blind:
        parts.append(
            "Shuffling the maps' cells leaves every score unchanged: it reads the distribution of a map's values, "
            "not where they lie, so its adversary reactivity is 0 by construction."
        )
    parts.append(_fill_sentence(result, summary))
    if result.skipped or result.failed:
        why = f": {'; '.join(result.reasons)}" if result.reasons else ""
        parts.append(f"{result.skipped} row(s) skipped and {result.failed} failed{why}.")
    parts.append(f"Limits: {'/'.join(map(str, images))} images per model; {LIMITS}.")
    return " ".join(p for p in parts if p)


HEADER = (
    "| metric column | better | τ vs known answer [95 % CI] | oracle > random > inverse | noise resilience "
    "| adversary reactivity | forwards / image·map | ms / image·map |"
)


def table_markdown(summary: Summary) -> str:
    """The table: one row per metric column."""
    lines = [HEADER, "|" + "---|" * 8]
    for r in summary.columns:
        tau = (
            "1 (is the known answer)"
            if r.is_ground_truth
            else f"{r.tau.value:+.2f} [{r.tau.low:+.2f}, {r.tau.high:+.2f}]"
        )
        known = [m for m in r.models if m.discriminates is not None]
        disc = f"{len(r.discriminating)}/{len(known)}" if known else "n/a"
        lines.append(
            f"| {r.column} | {'↑' if r.higher_is_better else '↓'} | {tau} | {disc} | {_fmt(r.noise_resilience)} "
            f"| {_fmt(r.adversary_reactivity)} | {_fmt(r.forwards, 1)} | {_fmt(r.seconds * 1000, 2)} |"
        )
    return "\n".join(lines)


def settings_sentence(summary: Summary, note: str = "") -> str:
    """What was run, in one sentence (``note``: where the timings were taken, e.g. a shared machine)."""
    s = summary.settings
    images = sorted(set(summary.images.values()))
    maps = sorted({len(v) for v in summary.methods.values()})
    flipped = sum(sum(v.values()) for v in summary.flipped.values())
    removed = _span(summary.evidence_drop)
    evidence = (
        f"; removing the object (the generator's counterfactual) drops the true class's probability by a median "
        f"{removed} across models, so the object is the evidence the known answer assumes"
        if removed
        else ""
    )
    spans = [(fill, _span(drops)) for fill, drops in summary.fill_drop.items()]
    for k, (fill, span) in enumerate([(fill, span) for fill, span in spans if span]):
        lead, verb = ("; setting the object's pixels", "drops it by") if k == 0 else (",", "by")
        evidence += f"{lead} to {FILL_WORDS.get(fill, repr(fill))} ({fill!r}) {verb} {span}"
    return (
        f"{len(summary.models)} mini model(s) × {'/'.join(map(str, maps))} maps (every registered method that "
        f"applies, RandomCAM, the true mask and its inverse) × {'/'.join(map(str, images))} generated scenes "
        f"(seed {s['seed']}), "
        f"{_metric_phrase(s)}; minor perturbations: {', '.join(s['perturbations'])} "
        f"(σ {s['input_noise']} pixel, {s['model_noise']} weight), disruption: map cells of {s['disrupt_cell']} px "
        f"shuffled; {s['bootstrap']} bootstrap resamples over images; metric settings "
        f"{json.dumps(s['metric_params'], separators=(',', ':'))}; {flipped} image·condition(s) flipped by a minor "
        f"perturbation (flagged, left out){evidence}; computed in {summary.compute_seconds / 60:.1f} min"
        + ("" if summary.cpu_seconds is None else f" ({summary.cpu_seconds / 60:.1f} CPU-min)")
        + (f" ({note})." if note else ".")
    )


def _metric_phrase(settings: dict[str, Any]) -> str:
    left_out = settings.get("excluded_metrics") or {}
    run = len(settings["metrics"])
    if not left_out:
        return f"every registered metric ({run})"
    return f"every registered metric ({run}) but the {len(left_out)} left out below"


def excluded_markdown(summary: Summary) -> str:
    """Which registered metrics the run left out and why, one line per reason ("" when none was)."""
    from camscope.metaeval.config import EXCLUDED_METRICS

    by_reason: dict[str, list[str]] = {}
    for name, stored in (summary.settings.get("excluded_metrics") or {}).items():
        # the reason is documentation, not a setting: today's text where the code still leaves the metric out
        by_reason.setdefault(EXCLUDED_METRICS.get(name, stored), []).append(name)
    lines = [f"- {', '.join(f'`{n}`' for n in names)}: {reason}." for reason, names in by_reason.items()]
    return "\n".join(["*Left out* (`--metrics NAME` runs one):", *lines]) if lines else ""


def findings_markdown(summary: Summary) -> str:
    return "\n\n".join(f"- {r.finding}" for r in summary.columns)


def write_outputs(summary: Summary, out: str | Path) -> list[Path]:
    """``summary.json``, ``metaeval.md`` (settings, table, findings) and ``metaeval.png`` in ``out``."""
    from camscope.metaeval.plot import plot_png
    from camscope.sweep.store import atomic_write

    out = Path(out)
    text = "\n\n".join(
        [
            "# camscope meta-evaluation",
            settings_sentence(summary),
            *filter(None, [excluded_markdown(summary)]),
            table_markdown(summary),
            findings_markdown(summary),
        ]
    )
    written = []
    for name, content in ((SUMMARY_FILE, summary.to_json()), (TABLE_FILE, text + "\n")):
        atomic_write(out / name, lambda p, c=content: p.write_text(c, encoding="utf-8"))
        written.append(out / name)
    png = plot_png(summary)
    atomic_write(out / PLOT_FILE, lambda p: p.write_bytes(png))
    written.append(out / PLOT_FILE)
    return written
