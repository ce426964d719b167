"""The explorer's work without a web framework: models × methods on one image → overlays, scores, curves,
and the per-head attention of token models.

Everything here goes through the public API — :func:`camscope.load_model`, :func:`camscope.explain`,
:func:`camscope.evaluate`, :func:`camscope.attention_heads`, the method registry and :mod:`camscope.viz` —
so the app explains and scores exactly as the CLI does. What this module adds is what a long-lived, shared
page needs: a cache per (model, method, image, target), one lock per model (hooks on a shared model must
not interleave), bounds (image size, curve steps), progress and cancellation inside a long cell
(:mod:`camscope.core.progress`: a stopped Score-CAM or RELAX ends within one chunk and frees its model for the
other requests), and errors turned into messages.

Targets: a class (by name or index; empty: each model's top-1), or label-free — the model's backbone
(``load_model(name, head=False)``) explained by each image's own embedding, or by its cosine similarity to
a reference image's embedding; the deletion / insertion curves then score that similarity.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import textwrap
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from camscope.api import Explanation, attention_heads, evaluate, explain
from camscope.core.devices import resolve_device
from camscope.core.errors import CamscopeError, CamscopeWarning, InputError, WeightsError
from camscope.core.progress import Report, monitor
from camscope.core.targets import CLASS_PROBABILITY
from camscope.data.images import limit_size, load_image_array
from camscope.methods import get_method, method_names
from camscope.methods.attention_capture import AttentionUnavailableError
from camscope.models import get_spec, list_models, load_model, resolve_weights
from camscope.pipeline import recorded_texts, target_from_text

log = logging.getLogger(__name__)

MAX_SIDE = 1024  # longer side of an uploaded image above which it is downscaled (with a notice)
CURVE_STEPS = 32  # deletion / insertion steps per curve: a bounded cost whatever the input size
SCORE_METRICS = ("deletion", "insertion")
SCENE_METRICS = ("pointing", "energy_pointing")  # need the true mask: generated scenes only
CACHE_SIZE = 256  # cells and head pictures kept at most …
CACHE_BYTES = 256 * 2**20  # … and their arrays' bytes at most (an uploaded image's cell holds ~4 MB)
NO_HEADS = "no class-token attention (a CNN or Swin): no per-head picture"
TABLE_COLUMNS = ("model", "method", "target", "class", "deletion_auc", "insertion_auc", "pointing", "energy_pointing")


@dataclass(frozen=True)
class ModelChoice:
    """A zoo model as the page offers it: ready to run, or why not (the zoo's missing-file message)."""

    name: str
    ready: bool
    note: str


@dataclass(frozen=True)
class Picture:
    """The image being explained: uint8 (H, W, 3) pixels, a name, the true object mask of a generated scene,
    and notices for the user (e.g. "downscaled")."""

    pixels: np.ndarray
    name: str
    mask: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # what the image loader warned about: every cell's explanation carries it

    @property
    def key(self) -> str:
        digest = hashlib.sha1(self.pixels.tobytes())
        digest.update(str(self.pixels.shape).encode())
        if self.mask is not None:
            digest.update(np.packbits(self.mask).tobytes())
        return digest.hexdigest()


@dataclass
class Cell:
    """One (model, method) result: the explanation and its scores, or the message saying why there is none."""

    model: str
    method: str
    target: str
    explanation: Explanation | None = None
    scores: dict[str, float] = field(default_factory=dict)
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # column: (x, y)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    label_free: bool = False  # the backbone explained by an embedding similarity (``target`` says which)
    score: str = CLASS_PROBABILITY  # what its curves' y values are (camscope.Scores.score)


@dataclass
class Heads:
    """A token model's per-head attention picture (:func:`camscope.viz.head_grid`), or why there is none."""

    model: str
    picture: np.ndarray | None = None
    error: str | None = None


class Explorer:
    """Shared by every page of one ``camscope app``: loaded models and computed cells are kept here."""

    def __init__(
        self,
        weights: str | None = None,
        device: str = "auto",
        max_side: int = MAX_SIDE,
        curve_steps: int = CURVE_STEPS,
        cache_size: int = CACHE_SIZE,
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self.weights = weights
        self.device = resolve_device(device)
        self.max_side = max_side
        self.curve_steps = curve_steps
        self.cache_size = cache_size
        self.cache_bytes = cache_bytes
        self._sizes: dict[tuple[str, ...], int] = {}  # bytes of each cached item
        self._models: dict[tuple[str, bool], nn.Module] = {}  # (name, backbone)
        self._locks: dict[tuple[str, bool], threading.Lock] = {}
        self._cache: OrderedDict[tuple[str, ...], Cell | Heads] = OrderedDict()
        self._guard = threading.Lock()
        self._runs: dict[str, threading.Event] = {}  # page session -> cancel flag of its current run

    # ---- what can be chosen ------------------------------------------------------------------------

    def model_choices(self) -> list[ModelChoice]:
        """Every zoo model, ready ones first; a model without its weights carries the zoo's message."""
        choices = []
        for name in list_models():
            spec = get_spec(name)
            try:
                self._weights_source(name)
            except WeightsError as exc:
                try:  # a self-supervised backbone without its linear probe still explains label-free
                    self._weights_source(name, backbone=True)
                except WeightsError:
                    choices.append(ModelChoice(name, False, str(exc)))
                else:
                    choices.append(ModelChoice(name, True, f"backbone only (label-free targets): {exc}"))
                continue
            choices.append(ModelChoice(name, True, f"{spec.family}, {spec.training_label}"))
        return sorted(choices, key=lambda c: not c.ready)

    def _weights_source(self, name: str, backbone: bool = False) -> str | None:
        """``--weights DIR`` first, then the zoo's usual places (so the packaged minis are always there);
        ``backbone``: only the files the backbone needs (not a linear probe)."""
        spec = get_spec(name).backbone() if backbone else get_spec(name)
        if self.weights is None:
            resolve_weights(spec)
            return None
        try:
            resolve_weights(spec, self.weights)
            return self.weights
        except WeightsError:
            try:
                resolve_weights(spec)
            except WeightsError:
                pass
            else:
                return None
            raise

    @staticmethod
    def method_choices() -> list[str]:
        """The registered methods, read from the registry (methods added later appear by themselves)."""
        return method_names()

    # ---- images --------------------------------------------------------------------------------------

    def open_image(self, path: str | Path) -> Picture:
        """An uploaded file through camscope's one image loader; oversized images are downscaled, with a note."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CamscopeWarning)
            pixels = load_image_array(path)
        height, width = pixels.shape[:2]
        pixels, scaled = limit_size(pixels, self.max_side)
        notes: tuple[str, ...] = ()
        if scaled:
            notes = (f"the image was {width}×{height} px: downscaled to {pixels.shape[1]}×{pixels.shape[0]} px",)
        return Picture(pixels, Path(path).name, notes=notes, warnings=tuple(recorded_texts(caught)))

    @staticmethod
    def scene(seed: int) -> Picture:
        """A generated scene with its true object mask (``camscope.data.generate``)."""
        from camscope.data import generate

        if seed < 0:
            raise InputError(f"the scene seed must be 0 or more, got {seed}")
        batch = generate(1, seed=int(seed))
        return Picture(batch.images[0], f"scene {seed}: {batch.class_names[batch.labels[0]]}", mask=batch.masks[0])

    # ---- computing -----------------------------------------------------------------------------------

    def model(self, name: str, backbone: bool = False) -> nn.Module:
        """The loaded model (``backbone``: without its classifier, for label-free targets), loaded once."""
        key = (name, backbone)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._models:
                weights = self._weights_source(name, backbone)
                self._models[key] = load_model(name, weights=weights, head=not backbone).to(self.device)
            return self._models[key]

    @contextmanager
    def _using(self, name: str, backbone: bool) -> Iterator[nn.Module]:
        """The model, held for this request alone (hooks on a shared model must not interleave)."""
        net = self.model(name, backbone)
        with self._locks[(name, backbone)]:
            yield net

    # ---- runs of one page: cancellation ----------------------------------------------------------------

    def start_run(self, session: str) -> threading.Event:
        """A fresh cancel flag for the run a page (``session``) starts now."""
        flag = threading.Event()
        with self._guard:
            self._runs[session] = flag
        return flag

    def stop_run(self, session: str) -> bool:
        """Stop the page's current run: its running cell ends within one chunk of work. False: none running."""
        with self._guard:
            flag = self._runs.get(session)
        if flag is None or flag.is_set():
            return False
        flag.set()
        return True

    # ---- cells -----------------------------------------------------------------------------------------

    def cell(
        self,
        model: str,
        method: str,
        picture: Picture,
        target: str = "",
        *,
        label_free: bool = False,
        reference: Picture | None = None,
        cancel: threading.Event | None = None,
        report: Report | None = None,
    ) -> Cell:
        """Explain and score one (model, method) pair; cached; never raises for the user's input.

        ``label_free``: the model's backbone, explained by each image's own embedding (inner product), or
        by the cosine similarity to ``reference``'s embedding. ``cancel`` / ``report``: see
        :func:`camscope.core.progress.monitor` (a stopped cell says so and is not cached).
        """
        shown = _target_label(target, label_free, reference)
        try:
            method = get_method(method).name
        except CamscopeError as exc:
            return Cell(model, method, shown, error=str(exc), label_free=label_free)
        if label_free:
            wanted = ("similarity", reference.key) if reference is not None else ("embedding",)
        else:
            wanted = ("class", target.strip().lower())
        key = (model, method, picture.key, *wanted)
        with self._guard:
            cached = self._cache.get(key)
            if isinstance(cached, Cell):
                self._cache.move_to_end(key)
                return cached
        cell = Cell(model, method, shown, label_free=label_free)
        start = time.perf_counter()

        def compute() -> None:
            with self._using(model, label_free) as net, monitor(cancel, report):
                self._compute(cell, net, method, picture, reference)

        cell.error = _guarded(compute, f"{model} × {method}")
        cell.seconds = time.perf_counter() - start
        if cell.error is None:
            self._remember(key, cell)
        return cell

    def _remember(self, key: tuple[str, ...], item: Cell | Heads) -> None:
        with self._guard:
            self._cache[key] = item
            self._sizes[key] = footprint(item)
            while len(self._cache) > self.cache_size or (len(self._cache) > 1 and self.cached_bytes > self.cache_bytes):
                oldest, _ = self._cache.popitem(last=False)
                del self._sizes[oldest]

    @property
    def cached_bytes(self) -> int:
        """What the cache holds, in bytes of its arrays (bounded by ``cache_bytes``, the newest item kept)."""
        return sum(self._sizes.values())

    def _compute(self, cell: Cell, net: nn.Module, method: str, picture: Picture, reference: Picture | None) -> None:
        from camscope.metrics import transform_mask

        spec = get_spec(net)
        # label-free: each image's own embedding ⟨f(x), f(x̃)⟩, or the cosine to the reference's embedding
        text = "embedding" if cell.label_free else cell.target
        size = (picture.pixels.shape[1], picture.pixels.shape[0])  # a typed box is in the picture's pixels
        target = target_from_text(text, net, reference.pixels if cell.label_free and reference else None, size)
        result = explain(net, picture.pixels, method, target)
        assert isinstance(result, Explanation)
        result.warnings[:0] = [w for w in picture.warnings if w not in result.warnings]
        cell.explanation = result
        pixels = int(np.prod(spec.input_size[1:]))
        step = max(1, -(-pixels // self.curve_steps))
        scored = target if cell.label_free else None  # None: the explained class of each explanation
        scores = evaluate(net, picture.pixels, result, SCORE_METRICS, scored, step=step)
        if picture.mask is not None:
            truth = transform_mask(picture.mask, spec.preprocess.resize, spec.preprocess.crop)[None]
            try:
                scores.update(evaluate(net, picture.pixels, result, SCENE_METRICS, scored, ground_truth=truth))
            except CamscopeError as exc:  # e.g. the object lies in the border the centre crop cuts away
                cell.notes.append(f"no localization scores: {exc}")
        cell.scores.update({column: float(values[0]) for column, values in scores.items()})
        cell.curves.update({column: (np.asarray(x), np.asarray(y[0])) for column, (x, y) in scores.curves.items()})
        cell.score = scores.score

    def run(
        self,
        models: Sequence[str],
        methods: Sequence[str],
        picture: Picture | None,
        target: str = "",
        cancel: threading.Event | None = None,
        report: Callable[[int, int, str], None] | None = None,
        *,
        label_free: bool = False,
        reference: Picture | None = None,
    ) -> Iterator[Cell]:
        """Cells model by model, method by method. Once ``cancel`` is set, the running cell stops within one
        chunk of work and no further cell starts. ``report(done, total, what)`` follows each cell's chunks."""
        if picture is None:
            raise InputError("no image yet: upload one or generate a scene")
        if not models:
            raise InputError("choose at least one model")
        if not methods:
            raise InputError("choose at least one method")
        for model in models:
            for method in methods:
                if cancel is not None and cancel.is_set():
                    return
                inner = None if report is None else _labelled(report, f"{model} × {method}")
                yield self.cell(
                    model, method, picture, target, label_free=label_free, reference=reference, cancel=cancel,
                    report=inner,
                )  # fmt: skip

    # ---- per-head attention ----------------------------------------------------------------------------

    def heads(self, model: str, picture: Picture, label_free: bool = False) -> Heads:
        """The per-head attention picture of a token model over its view of the image (cached); a CNN or Swin
        gets the message saying which methods work there."""
        from camscope.viz import figure_to_array, head_grid

        key = ("heads", model, picture.key, str(label_free))
        with self._guard:
            cached = self._cache.get(key)
            if isinstance(cached, Heads):
                self._cache.move_to_end(key)
                return cached
        out = Heads(model)

        def compute() -> None:
            with self._using(model, label_free) as net:
                try:
                    maps, view = attention_heads(net, picture.pixels)
                except AttentionUnavailableError:
                    raise AttentionUnavailableError(NO_HEADS) from None
            out.picture = figure_to_array(head_grid(view, maps))

        out.error = _guarded(compute, f"{model} attention heads")
        if out.error is None:
            self._remember(key, out)
        return out


def footprint(item: Cell | Heads) -> int:
    """Bytes of the arrays a cached cell or head picture holds (the rest is small)."""
    arrays: list[Any] = []
    if isinstance(item, Heads):
        arrays.append(item.picture)
    else:
        if item.explanation is not None:
            arrays += [item.explanation.map, item.explanation.image, item.explanation.original]
        arrays += [a for pair in item.curves.values() for a in pair]
    return 1024 + sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


def _guarded(compute: Callable[[], None], what: str) -> str | None:
    """Run ``compute``; a camscope error becomes its message, a bug one line (the server log has the rest)."""
    try:
        compute()
    except CamscopeError as exc:
        return str(exc)
    except Exception as exc:
        log.exception("camscope app: %s failed", what)
        return f"internal error ({type(exc).__name__}: {exc}); the server log has the details"
    return None


def _labelled(report: Callable[[int, int, str], None], label: str) -> Report:
    return lambda done, total, desc: report(done, total, f"{label}: {desc}")


def _target_label(target: str, label_free: bool, reference: Picture | None) -> str:
    """What a cell explains, as the page shows it."""
    if not label_free:
        return target.strip()
    return f"similarity to {reference.name}" if reference is not None else "own embedding"


# ---- pictures and tables of finished cells ----------------------------------------------------------------


def top_class_labels(cells: Sequence[Cell]) -> list[tuple[str, int]]:
    """The first explained model's top classes as ``("name (index) 93.1 %", index)`` choices."""
    for cell in cells:
        if cell.explanation is not None:
            return [(f"{name} ({index}) {prob:.1%}", index) for index, name, prob in cell.explanation.top_classes]
    return []


def cell_picture(cell: Cell, picture: Picture, view: str = "original", alpha: float = 0.5) -> np.ndarray:
    """The overlay of one cell (the true mask drawn as a contour for generated scenes); grey when it failed."""
    from camscope.metrics import transform_mask
    from camscope.viz import draw_contour

    if cell.explanation is None:
        return np.full((64, 64, 3), 200, np.uint8)
    overlaid = cell.explanation.overlay(alpha, view=view)
    if picture.mask is not None:
        mask = picture.mask
        if view == "input" and cell.explanation.geometry is not None:
            mask = transform_mask(mask, *cell.explanation.geometry)
        overlaid = draw_contour(overlaid, mask)
    return overlaid


def _explained(cell: Cell) -> str:
    """The explained class's name, or the label-free target."""
    e = cell.explanation
    if cell.label_free or e is None:
        return cell.target
    if e.target is None:  # a detector's boxes (typed as box:...), or all its confident detections
        return cell.target or "detections"
    return next((n for i, n, _ in e.top_classes if i == e.target), str(e.target))


def cell_title(cell: Cell) -> str:
    """Method, explained class and scores in a few short lines (or the error, wrapped)."""
    if cell.explanation is None:
        return "\n".join([cell.method, *textwrap.wrap(cell.error or "no result", 34)[:5]])
    lines = [f"{cell.method} → {_explained(cell)}"]
    s = cell.scores
    if "deletion_auc" in s:
        lines.append(f"del {s['deletion_auc']:.3f}  ins {s['insertion_auc']:.3f}")
    if "pointing" in s:
        lines.append(f"pointing {s['pointing']:.0f}  energy {s['energy_pointing']:.2f}")
    return "\n".join(lines)


def grid_picture(cells: Sequence[Cell], picture: Picture, view: str = "original") -> np.ndarray:
    """Models × methods grid of overlays with their scores, as one uint8 image (also the PNG download)."""
    from camscope.viz import figure_to_array, grid_figure

    if not cells:
        raise InputError("nothing to draw yet")
    rows: dict[str, list[tuple[str, np.ndarray]]] = {}
    for cell in cells:
        rows.setdefault(cell.model, []).append((cell_title(cell), cell_picture(cell, picture, view)))
    figure = grid_figure(list(rows.values()), row_labels=list(rows), cell_inches=2.6)
    return figure_to_array(figure)


def curves_pictures(cells: Sequence[Cell]) -> list[np.ndarray]:
    """Deletion and insertion curves of every finished cell, one plot per metric."""
    from camscope.viz import figure_to_array, plot_curves

    pictures = []
    for metric in SCORE_METRICS:
        column = f"{metric}_auc"
        curves = {f"{c.model} · {c.method}": c.curves[column] for c in cells if column in c.curves}
        if curves:
            verb = "removed" if metric == "deletion" else "inserted"
            score = " / ".join(sorted({c.score for c in cells if column in c.curves}))
            figure = plot_curves(curves, title=metric, xlabel=f"fraction of pixels {verb}", ylabel=score)
            pictures.append(figure_to_array(figure))
    return pictures


def table_rows(cells: Sequence[Cell]) -> list[dict[str, object]]:
    """One row per cell: what was explained, its scores, its time, and any error or note."""
    rows = []
    for cell in cells:
        e = cell.explanation
        row: dict[str, object] = {
            "model": cell.model,
            "method": cell.method,
            "target": cell.target if cell.label_free else "" if e is None else e.target,
            "class": "" if e is None or cell.label_free else _explained(cell),
        }
        for column in TABLE_COLUMNS[4:]:
            value = cell.scores.get(column)
            row[column] = "" if value is None else round(value, 4)
        row["seconds"] = round(cell.seconds, 2)
        row["message"] = cell.error or "; ".join(cell.notes)
        rows.append(row)
    return rows


def write_csv(cells: Sequence[Cell], path: str | Path) -> Path:
    rows = table_rows(cells)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else list(TABLE_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return out
