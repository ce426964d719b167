"""Accuracy, localization and deletion of the shipped mini zoo, measured against the generator's ground truth.

Why one script: the same figures go into ``benchmarks/results/mini_zoo.md`` and into the README block
between ``<!-- mini-zoo:begin -->`` and ``<!-- mini-zoo:end -->``, which this script rewrites
(``python benchmarks/mini_zoo_report.py``); no table or figure in that block is typed by hand.

Per model × gradient CAM (maps explain the true class at the zoo's default target layer):

- *pointing game*: a hit when the map's maximum lies within the tolerance of the object mask. The
  tolerance is TorchRay's 15 px scaled to the 64-px scenes (15 · 64 / 224 ≈ 4.3 px,
  :func:`camscope.metrics.localization.scaled_tolerance`); the object covers 6-26 % of the image, so a
  map that ignores it hits about as often as a random point — RandomCAM measures that floor;
- *energy pointing*: the fraction of the map's energy inside the object's box;
- *deletion*: RISE's deletion AUC (lower is better), pixels removed in map order, 256 per step, on fewer
  images (it costs 17 forward passes per image).

Every cell is a mean with its 95 % interval (Student's t over images, :mod:`camscope.report.stats`).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from camscope.data.synthetic import SyntheticBatch, generate, to_input
from camscope.metrics.deletion import deletion
from camscope.metrics.localization import energy_pointing_game, pointing_game
from camscope.models.mini import ACCURACY_TARGETS as TARGETS
from camscope.models.mini import GENERATOR_PAIRED, MINI_MODELS, TEST_SEED, mini_record
from camscope.models.weights import PACKAGED_DIR as WEIGHTS_DIR
from camscope.report.stats import Estimate, difference, estimate
from camscope.testing.localization import LOCALIZATION_N, LOCALIZATION_SEED, TOLERANCE, cam_maps
from camscope.testing.readme_block import BEGIN, END, accuracy_markdown, training_label, write_readme

GRADIENT_METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigengradcam")
# The transformer-native methods shown, on the token models with a CLS row: every layer they need is their
# own default (the last block's class attention; all blocks for the rollouts).
TOKEN_METHODS: tuple[str, ...] = ("attention", "rollout", "gradrollout")
METHODS: tuple[str, ...] = (*GRADIENT_METHODS, *TOKEN_METHODS, "randomcam")
DELETION_METHODS: tuple[str, ...] = ("gradcam", "layercam", "randomcam")
DELETION_N = 100
DELETION_STEP = 256  # pixels per deletion step: 16 steps over the 64×64 image
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CACHE_DIR = Path("mini_runs") / "report_cache"  # git-ignored; keyed by the weights' hash and the settings
SECONDS_KEY = "_seconds"  # beside a cache entry's scores: how long computing them took
CACHE_VERSION = 1
README = Path(__file__).resolve().parent.parent / "README.md"
LABELS = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "xgradcam": "XGrad-CAM",
    "layercam": "LayerCAM",
    "attention": "attention",
    "rollout": "rollout",
    "gradrollout": "grad. rollout",
}
LABELS |= {"hirescam": "HiResCAM", "eigengradcam": "EigenGrad-CAM", "randomcam": "RandomCAM"}


def methods_for(model: nn.Module, methods: tuple[str, ...] = METHODS) -> tuple[str, ...]:
    """``methods`` less those that read class-token attention (their declaration) where the model has no
    class-attention row (CNNs, Swin)."""
    from camscope.methods import get_method
    from camscope.methods.attention_capture import AttentionUnavailableError, attention_layers

    try:
        attention_layers(model)
    except AttentionUnavailableError:
        return tuple(m for m in methods if not get_method(m).reads_attention)
    return methods


def load_mini(name: str) -> nn.Module:
    """A shipped mini model from the zoo, in eval mode, with its packaged weights."""
    from camscope.models import load_model

    return load_model(name)


@dataclass(frozen=True)
class Scores:
    """One model × method: pointing % and energy-pointing % (all images), deletion AUC (the first few)."""

    pointing: Estimate
    energy: Estimate
    deletion: Estimate | None


def _estimate(values: np.ndarray, scale: float = 1.0) -> Estimate:
    v = np.asarray(values, dtype=np.float64) * scale
    return estimate(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else None, len(v))


def score_model(model: nn.Module, method: str, data: SyntheticBatch, deletion_n: int) -> Scores:
    maps = cam_maps(model, method, data.images, data.labels)
    hits = pointing_game(maps, data.masks, tolerance=TOLERANCE).scores
    boxes = [b[None] for b in data.boxes]
    energy = energy_pointing_game(maps, boxes).scores
    removed = None
    if method in DELETION_METHODS and deletion_n:
        spec = model.camscope_spec  # type: ignore[attr-defined]
        x = to_input(data.images[:deletion_n], spec.mean, spec.std)
        with torch.inference_mode():
            curve = deletion(model, x, maps[:deletion_n], data.labels[:deletion_n].tolist(), step=DELETION_STEP)
        removed = _estimate(curve.auc)
    return Scores(_estimate(hits, 100), _estimate(energy, 100), removed)


def faithfulness_table(
    names: tuple[str, ...] = MINI_MODELS,
    methods: tuple[str, ...] = METHODS,
    n: int = LOCALIZATION_N,
    deletion_n: int = DELETION_N,
    seed: int = LOCALIZATION_SEED,
) -> dict[str, dict[str, Scores]]:
    """``{model: {method: Scores}}`` on ``generate(n, seed)``."""
    data = generate(n, seed)
    table: dict[str, dict[str, Scores]] = {}
    for name in names:
        model = load_mini(name)
        own = methods_for(model, methods)
        cache = _cache_file(name, own, n, deletion_n, seed)
        if cache.is_file():
            stored = json.loads(cache.read_text())
            stored.pop(SECONDS_KEY, None)
            table[name] = {m: Scores(**_from_json(v)) for m, v in stored.items()}
            continue
        start = time.perf_counter()
        table[name] = {method: score_model(model, method, data, deletion_n) for method in own}
        scores: dict[str, Any] = {m: dataclasses.asdict(v) for m, v in table[name].items()}
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({**scores, SECONDS_KEY: round(time.perf_counter() - start, 1)}))
    return table


def scoring_seconds(
    names: tuple[str, ...] = MINI_MODELS,
    methods: tuple[str, ...] = METHODS,
    n: int = LOCALIZATION_N,
    deletion_n: int = DELETION_N,
    seed: int = LOCALIZATION_SEED,
) -> dict[str, float | None]:
    """Seconds each model's cached scores took to compute (None: not cached, or cached before timings were kept).

    Why: a report assembled from a cache filled at different times should say what scoring costs from
    the measurement, not from a number copied into this script.
    """
    seconds: dict[str, float | None] = {}
    for name in names:
        cache = _cache_file(name, methods_for(load_mini(name), methods), n, deletion_n, seed)
        seconds[name] = json.loads(cache.read_text()).get(SECONDS_KEY) if cache.is_file() else None
    return seconds


def _timing_sentence(seconds: dict[str, float | None]) -> str:
    timed = {k: v for k, v in seconds.items() if v is not None}
    if not timed:
        return "no cache entry records its scoring time"
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in timed.items())
    untimed = len(seconds) - len(timed)
    return f"scoring took {parts} (one thread){f'; {untimed} entries predate timings' if untimed else ''}"


def _cache_file(name: str, methods: tuple[str, ...], n: int, deletion_n: int, seed: int) -> Path:
    """Scores depend only on the weights and the settings: a model whose file is unchanged is not recomputed."""
    digest = hashlib.sha256((WEIGHTS_DIR / f"{name}.safetensors").read_bytes())
    digest.update(repr((methods, n, deletion_n, seed, TOLERANCE, DELETION_STEP, CACHE_VERSION)).encode())
    return CACHE_DIR / f"{name}-{digest.hexdigest()[:16]}.json"


def _from_json(scores: dict) -> dict[str, Estimate | None]:
    return {k: None if v is None else Estimate(**v) for k, v in scores.items()}


def _cell(e: Estimate | None, digits: int = 1) -> str:
    if e is None:
        return "—"
    return f"{e.mean:.{digits}f} ± {e.half_width:.{digits}f}"


def weights_size() -> str:
    """The shipped weights: how many files and megabytes (measured, for the README's prose)."""
    files = [WEIGHTS_DIR / f"{name}.safetensors" for name in MINI_MODELS]
    return f"{len(files)} float16 safetensors files, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB in all"


def metric_markdown(table: dict[str, dict[str, Scores]], metric: str) -> str:
    every = [m for m in METHODS if any(m in row for row in table.values())]
    methods = [m for m in every if metric != "deletion" or m in DELETION_METHODS]
    lines = [
        "| model | training | " + " | ".join(LABELS.get(m, m) for m in methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for name, row in table.items():
        label = training_label(mini_record(name))
        digits = 3 if metric == "deletion" else 1
        cells = [_cell(getattr(row[m], metric), digits) if m in row else "—" for m in methods]
        lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _group_mean(table: dict[str, dict[str, Scores]], names: list[str], method: str) -> Estimate:
    """Mean pointing over the models of a group, with the interval of the mean of independent estimates."""
    values = [table[n][method].pointing for n in names]
    mean = float(np.mean([v.mean for v in values]))
    half = float(np.sqrt(np.sum([v.half_width**2 for v in values])) / len(values))
    return Estimate(mean, half, sum(v.n for v in values))


def _pointing_comparison(table: dict[str, dict[str, Scores]], a: list[str], b: list[str]) -> str:
    """Grad-CAM and LayerCAM pointing of group a vs group b, each with whether the difference is resolved."""
    parts = []
    for method in ("gradcam", "layercam"):
        ea, eb = _group_mean(table, a, method), _group_mean(table, b, method)
        verdict = "a difference larger than its interval" if difference(ea, eb).resolved else "within the noise"
        parts.append(
            f"{LABELS[method]} pointing {ea.mean:.1f} ± {ea.half_width:.1f} vs {eb.mean:.1f} ± "
            f"{eb.half_width:.1f} % ({verdict})"
        )
    return "; ".join(parts)


def findings(table: dict[str, dict[str, Scores]]) -> str:
    """What the numbers show and what they do not, stated from the numbers themselves."""
    recs = {n: mini_record(n) for n in table}
    learned = [n for n in table if recs[n]["test_accuracy"] >= 60.0]
    weak = [n for n in table if n not in learned]
    out = []
    at_target = [n for n in table if recs[n]["test_accuracy"] >= TARGETS[recs[n]["training"]]]
    weak_text = (
        f"Models below 60 % accuracy ({', '.join(weak)}) learned less, and their maps are weaker evidence about "
        "a method: a map explains a classifier, and a weak classifier has less to explain."
        if weak
        else "Every model is above 60 % accuracy; those below target still explain a weaker classifier."
    )
    out.append(f"Models at target: {', '.join(at_target) or 'none'}. {weak_text}")
    by_training = {t: [n for n in learned if recs[n]["training"] == t] for t in ("supervised", "self-supervised")}
    # CNN vs transformer within one training regime: pooled across regimes, the groups would differ in how
    # the models were trained as much as in their architecture (and the generator-paired models in neither).
    comparisons = [("supervised", "self-supervised", by_training["supervised"], by_training["self-supervised"])]
    for training, names in by_training.items():
        cnn = [n for n in names if recs[n]["family"] == "ResNet"]
        comparisons.append(
            (
                f"{training} CNN",
                f"{training} transformer",
                cnn,
                [n for n in names if n not in cnn],
            )
        )
    for a, b, first, second in comparisons:
        title = a[0].upper() + a[1:]
        if not first or not second:
            missing = a if not first else b
            paired_learned = missing.startswith("self-supervised") and any(
                recs[n]["training"] == GENERATOR_PAIRED for n in learned
            )
            out.append(
                f"{title} vs {b}: not answered — no {missing} model reaches 60 % accuracy, so the "
                "comparison would be between a trained and an untrained model"
                + (" (the generator-paired models, which did learn, are compared below)." if paired_learned else ".")
            )
            continue
        out.append(
            f"{title} ({', '.join(first)}) vs {b} ({', '.join(second)}), models above 60 % only: "
            + _pointing_comparison(table, first, second)
            + "."
        )
    paired = [n for n in table if recs[n]["training"] == GENERATOR_PAIRED]
    if paired:
        out.append(
            f"The generator-paired models ({', '.join(paired)}) are not counted as self-supervised above: each "
            "pair of views they learned from was rendered from one object on two backgrounds, so the generator, "
            "not the method, chose what the views share — the object. Their maps say what that pairing teaches."
        )
    # The self-supervised transformers that learned are all generator-paired: compare them with the supervised
    # transformers, so that the transformer side of the question is answered for what was trained
    paired_tokens = [n for n in paired if n in learned and recs[n]["family"] != "ResNet"]
    supervised_tokens = [n for n in by_training["supervised"] if recs[n]["family"] != "ResNet"]
    if paired_tokens and supervised_tokens:
        out.append(
            f"Supervised transformer ({', '.join(supervised_tokens)}) vs generator-paired transformer "
            f"({', '.join(paired_tokens)}), models above 60 % only: "
            + _pointing_comparison(table, supervised_tokens, paired_tokens)
            + "."
        )
    # The groups above mix architectures; within one family the training is the only difference
    for family in sorted({recs[n]["family"] for n in learned}):
        sup = [n for n in by_training["supervised"] if recs[n]["family"] == family]
        ssl = [n for n in by_training["self-supervised"] if recs[n]["family"] == family]
        if sup and ssl:
            out.append(
                f"Within one architecture ({family}): supervised ({', '.join(sup)}) vs self-supervised "
                f"({', '.join(ssl)}): " + _pointing_comparison(table, sup, ssl) + "."
            )
    for name in learned:
        row = table[name]
        floor = row["randomcam"].pointing
        if row["gradcam"].pointing.mean <= floor.mean + floor.half_width:
            better = [LABELS[m] for m in GRADIENT_METHODS if row[m].pointing.mean > floor.mean + floor.half_width]
            out.append(
                f"On {name} ({recs[name]['test_accuracy']:.0f} % accurate) Grad-CAM points no better than random "
                f"channel weights ({row['gradcam'].pointing.mean:.1f} vs {floor.mean:.1f} ± {floor.half_width:.1f} %)"
                + (f"; {', '.join(better)} do better." if better else "; no gradient method does better.")
            )
    for name in learned:
        row = table[name]
        if "rollout" not in row:
            continue
        native = ", ".join(f"{LABELS[m]} {_cell(row[m].pointing)}" for m in TOKEN_METHODS)
        out.append(
            f"Token-native maps on {name}: {native} % pointing, against Grad-CAM's {_cell(row['gradcam'].pointing)} %."
        )
    out.append(
        "What the numbers do not show: they are one seed of one synthetic task with ten shape classes, small "
        "models and short training; the model groups differ in accuracy as well as in training or "
        "architecture, so a gap between groups is not caused by the grouping alone; and the intervals are over "
        "images, not over independently trained models."
    )
    return "\n\n".join(out)


def readme_block(table: dict[str, dict[str, Scores]], n: int, deletion_n: int) -> str:
    return "\n".join(
        [
            BEGIN,
            f"Test accuracy on `generate(1000, seed={TEST_SEED})` (chance 10 %); *object removed* = the same scenes "
            "with the object erased; self-supervised models are scored by a linear probe on the frozen backbone, "
            "as the seed's were, fitted on the number of labelled images in brackets. "
            f"Train time on one shared CPU core. Weights: {weights_size()}.",
            "",
            accuracy_markdown(),
            "",
            f"**What do they look at?** Maps explain the true class at the zoo's default layer, on {n} fresh "
            f"scenes (`generate({n}, seed={LOCALIZATION_SEED})`); mean ± 95 % interval over images. Pointing game "
            f"(%): the map's maximum within {TOLERANCE:.1f} px of the true object mask (TorchRay's 15 px scaled "
            "from 224 to 64 px); RandomCAM (random channel weights) is the floor. The attention methods "
            "(last block's CLS attention, rollout, gradient rollout) exist for the token models with a class "
            "token; — where a method does not apply (CNNs, Swin's windows).",
            "",
            metric_markdown(table, "pointing"),
            "",
            "Energy pointing (% of the map's energy inside the object's box):",
            "",
            metric_markdown(table, "energy"),
            "",
            f"Deletion AUC (lower is better; {deletion_n} scenes, {DELETION_STEP} pixels per step, removed "
            "pixels set to the dataset mean):",
            "",
            metric_markdown(table, "deletion"),
            "",
            findings(table),
            END,
        ]
    )


def main() -> int:
    """Write ``benchmarks/results/mini_zoo.md`` and the README's mini-zoo block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=LOCALIZATION_N)
    parser.add_argument("--deletion-images", type=int, default=DELETION_N)
    parser.add_argument("--no-readme", action="store_true", help="write only benchmarks/results/mini_zoo.md")
    parser.add_argument(
        "--cache-only",
        nargs="+",
        metavar="MODEL",
        choices=MINI_MODELS,
        help="only compute (or find) these models' scores in the cache and write nothing else: prepares the report "
        "while other models still train",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    if args.cache_only:
        faithfulness_table(tuple(args.cache_only), n=args.images, deletion_n=args.deletion_images)
        print(f"scores of {', '.join(args.cache_only)} cached in {CACHE_DIR} ({time.perf_counter() - start:.0f} s)")
        return 0
    table = faithfulness_table(n=args.images, deletion_n=args.deletion_images)
    seconds = time.perf_counter() - start
    block = readme_block(table, args.images, args.deletion_images)
    timing = _timing_sentence(scoring_seconds(n=args.images, deletion_n=args.deletion_images))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    body = block.replace(BEGIN + "\n", "").replace("\n" + END, "")
    (RESULTS_DIR / "mini_zoo.md").write_text(
        "# Mini zoo: accuracy, localization and deletion\n\n"
        + body
        + "\n\nReproduce: `python benchmarks/mini_zoo_report.py` (this file and the README block; scores of a "
        "model whose weights are unchanged are read from `mini_runs/report_cache`, which `--cache-only MODEL...` "
        f"fills while other models train; {timing}; this run {seconds:.0f} s).\n"
    )
    if not args.no_readme:
        write_readme(block, README)
    print((RESULTS_DIR / "mini_zoo.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
