"""Sweep configuration: one TOML file, read with the stdlib ``tomllib``, validated as a whole.

Why validate everything up front: a sweep can run for hours, and finding out after the third model
that the fourth has no weights (or that a metric name has a typo) wastes the run. :func:`load_config`
collects *every* problem — unknown model, method or metric, missing weights, unreadable image folder,
metric parameters the metric does not take, ground-truth metrics without ground truth — and raises one
:class:`ConfigError` that lists them all.

The file (see ``examples/*.toml``)::

    output = "results/mini"           # results folder (relative: to the config file's folder; --output: to the cwd)
    device = "auto"                   # "cpu", "cuda", "cuda:1" or "auto"
    methods = ["gradcam", "scorecam"] # or tables: [methods.scorecam] batch_size = 64
    models = ["mini_resnet", { name = "resnet50", weights = "pretrained_weights/" }]
    targets = "top1"                  # "top1" (the model's prediction), "label" (the true class) or
                                      # "embedding" (label-free: each model's backbone, see below)
    batch_size = 16                   # images per CAM call
    metric_batch_size = 64            # perturbed images per forward pass in the metrics
    shard_size = 16                   # images per task (the unit that is written and resumed)
    report_images = 6                 # images whose overlays the report shows

    [images]
    source = "synthetic:32"           # a folder, a glob ("imgs/*.jpg"), a list of files, synthetic:N, or
                                      # mosaic:N (2x2 mosaics of synthetic scenes, for the focus metric)
    seed = 0                          # synthetic only
    size = 64                         # synthetic only
    annotations = "annotations/"      # optional: <stem>.xml (Pascal VOC boxes) or <stem>.png (mask)

    [metrics.deletion]                # a table per metric, with its parameters
    step = 64
    [metrics.pointing]

``targets = "embedding"`` explains every model without its classifier (``load_model(name, head=False)``,
so a self-supervised backbone needs no linear-probe file): each image by the inner product with its own
unmasked embedding, ⟨f(x), f(x̃)⟩ (Label-Free XAI; the cosine's gradient vanishes at x̃ = x), and the
deletion / insertion / average-drop curves score that similarity. RELAX keeps its own default (the cosine
of masked to unmasked embeddings). Such rows have no target class, prediction or probability.

A model entry may also say ``random_weights = true`` (wiring tests; every output says so loudly) and
``input_size = 64`` (replace the spec's resize/crop, for models used at another resolution).
"""

from __future__ import annotations

import glob as globlib
import hashlib
import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from camscope.core.errors import CamscopeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
TOP_LEVEL = {
    "output",
    "device",
    "methods",
    "models",
    "targets",
    "batch_size",
    "metric_batch_size",
    "shard_size",
    "report_images",
    "images",
    "metrics",
}
IMAGE_KEYS = {"source", "seed", "size", "annotations", "limit"}
MODEL_KEYS = {"name", "weights", "random_weights", "input_size"}
TARGETS = ("top1", "label", "embedding")
# parameters the sweep supplies itself: a config may not set them per metric / method
_SUPPLIED = {
    "model",
    "inputs",
    "maps",
    "targets",
    "ground_truth",
    "mean",
    "std",
    "target_layers",
    "reshape_transform",
    "progress",
}


class ConfigError(CamscopeError):
    """A sweep configuration with problems; the message lists every one of them."""


@dataclass(frozen=True)
class ModelEntry:
    """One model of the sweep and where its weights come from."""

    name: str
    weights: str | None = None
    random_weights: bool = False
    input_size: int | None = None
    weights_files: tuple[str, ...] = ()  # "file:size" of each resolved weights file (for the config hash)


@dataclass(frozen=True)
class ImageSource:
    """Where the images come from: files (``paths``) or the synthetic generator (``synthetic`` > 0)."""

    paths: tuple[str, ...] = ()
    root: str | None = None  # image ids are paths relative to this folder
    synthetic: int = 0
    seed: int = 0
    size: int = 64
    annotations: str | None = None
    mosaic: bool = False  # the synthetic images are 2x2 mosaics (camscope.data.mosaic)


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: everything the task function needs, picklable (Ray ships it to workers)."""

    output: str
    models: tuple[ModelEntry, ...]
    methods: dict[str, dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    images: ImageSource
    device: str = "auto"
    targets: str = "top1"
    batch_size: int = 16
    metric_batch_size: int = 64
    shard_size: int = 16
    report_images: int = 6
    source_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def model(self, name: str) -> ModelEntry:
        return next(m for m in self.models if m.name == name)

    @property
    def label_free(self) -> bool:
        """Models are explained as backbones, each image by its own embedding (``targets = "embedding"``)."""
        return self.targets == "embedding"

    def hash(self) -> str:
        """Fingerprint of everything that decides the results (not output folder, device, batch sizes).

        A resumed sweep must have the same fingerprint as the run it continues; otherwise its rows
        would mix two experiments. Batch sizes and the device only change speed, so one can resume a
        CPU run on a GPU.
        """
        relevant = {
            "models": [asdict(m) for m in self.models],
            "methods": self.methods,
            "metrics": self.metrics,
            # without mosaics the fingerprint is the one written before mosaics existed: old runs resume
            "images": {k: v for k, v in asdict(self.images).items() if k != "mosaic" or v},
            "targets": self.targets,
            "shard_size": self.shard_size,
            "report_images": self.report_images,
        }
        text = json.dumps(relevant, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = json.loads(json.dumps(asdict(self), default=str))
        return plain


def load_config(path: str | os.PathLike[str], *, output: str | None = None) -> SweepConfig:
    """Read and validate a TOML sweep file; raises :class:`ConfigError` listing every problem."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sweep config {file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read sweep config {file}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from None
    if output is not None:  # given on the command line: relative to the current folder, not the config's
        raw["output"] = str(Path(output).expanduser().absolute())
    return parse_config(raw, base=file.parent, source=str(file))


def parse_config(raw: dict[str, Any], base: str | os.PathLike[str] = ".", source: str | None = None) -> SweepConfig:
    """Validate a config given as a dict (the parsed TOML); relative paths are taken from ``base``."""
    problems: list[str] = []
    base_dir = Path(base)
    for key in sorted(set(raw) - TOP_LEVEL):
        problems.append(f"unknown key {key!r} (known: {', '.join(sorted(TOP_LEVEL))})")

    def positive(key: str, default: int) -> int:
        value = raw.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{key} must be a positive integer, got {value!r}")
            return default
        return value

    batch_size = positive("batch_size", 16)
    metric_batch_size = positive("metric_batch_size", 64)
    shard_size = positive("shard_size", 16)
    report_images = raw.get("report_images", 6)
    if not isinstance(report_images, int) or isinstance(report_images, bool) or report_images < 0:
        problems.append(f"report_images must be an integer >= 0, got {report_images!r}")
        report_images = 6
    output = raw.get("output")
    if not isinstance(output, str) or not output:
        problems.append("output (the results folder) is missing")
        output = "results"
    targets = raw.get("targets", "top1")
    if targets not in TARGETS:
        problems.append(f"targets must be one of {', '.join(TARGETS)}, got {targets!r}")
        targets = "top1"
    device = _check_device(raw.get("device", "auto"), problems)

    images = _check_images(raw.get("images"), base_dir, problems)
    models = _check_models(raw.get("models"), base_dir, problems, head=targets != "embedding")
    methods = _check_methods(raw.get("methods"), problems)
    metrics = _check_metrics(raw.get("metrics"), images, problems)
    if targets == "label" and not images.synthetic:
        problems.append('targets = "label" needs labelled images: only synthetic images carry labels')
    if targets == "label" and images.synthetic:
        _check_label_classes(models, problems)
    if problems:
        head = f"{source or 'sweep config'}: {len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise ConfigError(head + "\n" + "\n".join(f"  - {p}" for p in problems))
    out = Path(output)
    return SweepConfig(
        output=str((out if out.is_absolute() else base_dir / out).absolute()),
        models=tuple(models),
        methods=methods,
        metrics=metrics,
        images=images,
        device=device,
        targets=targets,
        batch_size=batch_size,
        metric_batch_size=metric_batch_size,
        shard_size=shard_size,
        report_images=report_images,
        source_file=source,
    )


# --------------------------------------------------------------------------- sections


def _check_device(device: Any, problems: list[str]) -> str:
    from camscope.core.devices import check_device
    from camscope.core.errors import CamscopeError

    try:
        return check_device(device)
    except CamscopeError as exc:
        problems.append(str(exc))
        return "cpu"


def _check_images(section: Any, base: Path, problems: list[str]) -> ImageSource:
    if section is None:
        problems.append("[images] is missing: give source = a folder, a glob, a list of files or 'synthetic:N'")
        return ImageSource()
    if isinstance(section, (str, list)):
        section = {"source": section}
    if not isinstance(section, dict):
        problems.append(f"images must be a table, got {section!r}")
        return ImageSource()
    for key in sorted(set(section) - IMAGE_KEYS):
        problems.append(f"[images]: unknown key {key!r} (known: {', '.join(sorted(IMAGE_KEYS))})")
    source = section.get("source")
    annotations = section.get("annotations")
    ann_dir = None
    if annotations is not None:
        ann = _resolve(base, str(annotations))
        if not ann.is_dir():
            problems.append(f"[images] annotations folder {ann} does not exist or is not a folder")
        ann_dir = str(ann)
    limit = section.get("limit")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        problems.append(f"[images] limit must be a positive integer, got {limit!r}")
        limit = None
    if isinstance(source, str) and source.startswith(("synthetic:", "mosaic:")):
        kind, _, count = source.partition(":")
        seed, size = section.get("seed", 0), section.get("size", 64)
        if not count.isdigit() or int(count) < 1:
            problems.append(f"[images] source {source!r}: write {kind}:N with N a positive integer")
            count = "1"
        if not isinstance(seed, int) or seed < 0:
            problems.append(f"[images] seed must be an integer >= 0, got {seed!r}")
            seed = 0
        if not isinstance(size, int) or size < 32:
            problems.append(f"[images] size must be an integer >= 32, got {size!r}")
            size = 64
        if kind == "mosaic" and (size < 64 or size % 2):
            problems.append(f"[images] size of mosaics must be an even integer >= 64 (tiles of >= 32), got {size!r}")
            size = 64
        n = min(int(count), limit) if limit else int(count)
        return ImageSource(synthetic=n, seed=seed, size=size, annotations=ann_dir, mosaic=kind == "mosaic")
    paths, root = _image_files(source, base, problems)
    if limit:
        paths = paths[:limit]
    return ImageSource(paths=tuple(paths), root=root, annotations=ann_dir)


def _image_files(source: Any, base: Path, problems: list[str]) -> tuple[list[str], str | None]:
    """Files of a folder (recursive, sorted), a glob, or an explicit list; problems for what is missing."""
    if isinstance(source, list):
        files = []
        for item in source:
            if not isinstance(item, str):
                problems.append(f"[images] source list holds a non-path {item!r}")
                continue
            path = _resolve(base, item)
            if not path.is_file():
                problems.append(f"[images] image file {path} does not exist")
            files.append(str(path))
        if not source:
            problems.append("[images] source is an empty list")
        root = os.path.commonpath([str(Path(f).parent) for f in files]) if files else None
        return files, root
    if not isinstance(source, str) or not source:
        problems.append("[images] source is missing: a folder, a glob, a list of files or 'synthetic:N'")
        return [], None
    path = _resolve(base, source)
    if any(ch in source for ch in "*?["):
        files = sorted(p for p in globlib.glob(str(path), recursive=True) if Path(p).is_file())
        if not files:
            problems.append(f"[images] the glob {path} matches no file")
        return files, os.path.commonpath([str(Path(f).parent) for f in files]) if files else None
    if not path.exists():
        problems.append(f"[images] folder {path} does not exist")
        return [], None
    if path.is_file():
        return [str(path)], str(path.parent)
    if not os.access(path, os.R_OK | os.X_OK):
        problems.append(f"[images] folder {path} is not readable")
        return [], None
    files = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        problems.append(f"[images] folder {path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files, str(path)


def _resolve(base: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def _check_models(section: Any, base: Path, problems: list[str], head: bool = True) -> list[ModelEntry]:
    """Model entries; ``head=False`` (label-free sweeps) checks only the backbone's weights files."""
    from camscope.core.errors import UnknownNameError, WeightsError
    from camscope.models import get_spec, resolve_weights

    if not section:
        problems.append("models is missing or empty: list zoo, timm or torchvision names (`camscope zoo`)")
        return []
    if not isinstance(section, list):
        section = [section]
    entries: list[ModelEntry] = []
    for item in section:
        item = {"name": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(f"models: each entry is a name or a table with name = ..., got {item!r}")
            continue
        name = item["name"]
        for key in sorted(set(item) - MODEL_KEYS):
            problems.append(f"model {name}: unknown key {key!r} (known: {', '.join(sorted(MODEL_KEYS))})")
        weights, random_weights, input_size = item.get("weights"), bool(item.get("random_weights", False)), None
        if "input_size" in item:
            input_size = item["input_size"]
            if not isinstance(input_size, int) or input_size < 16:
                problems.append(f"model {name}: input_size must be an integer >= 16, got {input_size!r}")
                input_size = None
        if any(e.name == name for e in entries):
            problems.append(f"model {name} is listed twice")
            continue
        try:
            spec = get_spec(name) if head else get_spec(name).backbone()
        except UnknownNameError as exc:
            problems.append(str(exc))
            continue
        files: tuple[str, ...] = ()
        if weights is not None:
            weights = str(_resolve(base, str(weights)))
        if random_weights and weights is not None:
            problems.append(f"model {name}: give weights or random_weights = true, not both")
        elif not random_weights:
            try:
                locations = resolve_weights(spec, weights)
                files = tuple(f"{loc.path.name}:{loc.path.stat().st_size}" for loc in locations if loc.path)
            except WeightsError as exc:
                problems.append(f"model {name}: {exc}")
        entries.append(ModelEntry(name, weights, random_weights, input_size, files))
    return entries


def _named_tables(
    kind: str, section: Any, lookup: Callable[[str], Any], empty_hint: str, problems: list[str]
) -> list[tuple[str, Any, dict[str, Any]]]:
    """A ``[methods]`` / ``[metrics]`` section — a list of names or a table of parameter tables — as
    (name as written, registered entry, parameters); unknown names, non-table parameters and repeats are
    problems."""
    from camscope.core.errors import UnknownNameError

    if not section:
        problems.append(f"{kind}s is missing or empty ({empty_hint})")
        return []
    items = {name: {} for name in section} if isinstance(section, list) else section
    if not isinstance(items, dict):
        problems.append(f"{kind}s must be a list of names or a table of tables, got {section!r}")
        return []
    entries: list[tuple[str, Any, dict[str, Any]]] = []
    for name, params in items.items():
        try:
            entry = lookup(str(name))
        except UnknownNameError as exc:
            problems.append(str(exc))
            continue
        if params is not None and not isinstance(params, dict):
            problems.append(f"{kind} {name}: parameters must be a table, got {params!r}")
            continue
        if any(e.name == entry.name for _, e, _ in entries):
            problems.append(f"{kind} {entry.name} is listed twice")
            continue
        entries.append((str(name), entry, dict(params or {})))
    return entries


def _check_methods(section: Any, problems: list[str]) -> dict[str, dict[str, Any]]:
    from camscope.methods import get_method, method_names

    methods: dict[str, dict[str, Any]] = {}
    hint = f"known: {', '.join(method_names())}"
    for name, cls, params in _named_tables("method", section, get_method, hint, problems):
        _check_params(f"method {name}", cls.params, params, problems)
        methods[cls.name] = params
    return methods


def _check_metrics(section: Any, images: ImageSource, problems: list[str]) -> dict[str, dict[str, Any]]:
    from camscope.metrics import get_metric

    hint = "e.g. [metrics.deletion], [metrics.insertion]"
    metrics: dict[str, dict[str, Any]] = {}
    for name, metric, params in _named_tables("metric", section, get_metric, hint, problems):
        _check_params(f"metric {name}", metric.params, params, problems)
        if metric.needs_ground_truth and not images.synthetic and not images.annotations:
            problems.append(f"metric {name} needs ground truth: use synthetic images or give [images] annotations")
        metrics[metric.name] = params
    return metrics


def _check_params(what: str, declared: tuple[str, ...], params: dict[str, Any], problems: list[str]) -> None:
    """Config parameters against the method's / metric's declared parameters."""
    for key in sorted(params):
        if key in _SUPPLIED:
            problems.append(f"{what}: {key!r} is set by the sweep itself, not by the config")
        elif key not in declared:
            known = [k for k in declared if k not in _SUPPLIED]
            problems.append(f"{what}: unknown parameter {key!r} (accepted: {', '.join(known) or 'none'})")


def _check_label_classes(models: list[ModelEntry], problems: list[str]) -> None:
    from camscope.data import CLASS_NAMES
    from camscope.models import get_spec

    for entry in models:
        spec = get_spec(entry.name)
        if spec.num_classes != len(CLASS_NAMES):
            problems.append(
                f'model {entry.name}: targets = "label" uses the synthetic classes ({len(CLASS_NAMES)}), '
                f'but the model has {spec.num_classes} outputs; use targets = "top1"'
            )
