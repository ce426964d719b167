"""The explorer's work without a web framework: models × methods on one image → overlays, scores, curves.

Everything here goes through the public API — :func:`camscope.load_model`, :func:`camscope.explain`,
:func:`camscope.evaluate`, the method registry and :mod:`camscope.viz` — so the app explains and scores
exactly as the CLI does. What this module adds is what a long-lived, shared page needs: a cache per
(model, method, image, target), one lock per model (hooks on a shared model must not interleave), bounds
(image size, curve steps), cancellation between cells, and errors turned into messages.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import textwrap
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from camscope.api import Explanation, evaluate, explain
from camscope.data.images import limit_size, load_image_array
from camscope.devices import resolve_device
from camscope.errors import CamscopeError, InputError, WeightsError
from camscope.methods import get_method, method_names
from camscope.models import get_spec, list_models, load_model, resolve_weights

log = logging.getLogger(__name__)

MAX_SIDE = 1024  # longer side of an uploaded image above which it is downscaled (with a notice)
CURVE_STEPS = 32  # deletion / insertion steps per curve: a bounded cost whatever the input size
SCORE_METRICS = ("deletion", "insertion")
SCENE_METRICS = ("pointing", "energy_pointing")  # need the true mask: generated scenes only
CACHE_SIZE = 256
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


class Explorer:
    """Shared by every page of one ``camscope app``: loaded models and computed cells are kept here."""

    def __init__(
        self,
        weights: str | None = None,
        device: str = "auto",
        max_side: int = MAX_SIDE,
        curve_steps: int = CURVE_STEPS,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.weights = weights
        self.device = resolve_device(device)
        self.max_side = max_side
        self.curve_steps = curve_steps
        self.cache_size = cache_size
        self._models: dict[str, nn.Module] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._cache: OrderedDict[tuple[str, ...], Cell] = OrderedDict()
        self._guard = threading.Lock()

    # ---- what can be chosen ------------------------------------------------------------------------

    def model_choices(self) -> list[ModelChoice]:
        """Every zoo model, ready ones first; a model without its weights carries the zoo's message."""
        choices = []
        for name in list_models():
            spec = get_spec(name)
            try:
                self._weights_source(name)
            except WeightsError as exc:
                choices.append(ModelChoice(name, False, str(exc)))
                continue
            choices.append(ModelChoice(name, True, f"{spec.family}, {spec.training_label}"))
        return sorted(choices, key=lambda c: not c.ready)

    def _weights_source(self, name: str) -> str | None:
        """``--weights DIR`` first, then the zoo's usual places (so the packaged minis are always there)."""
        spec = get_spec(name)
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
        pixels = load_image_array(path)
        height, width = pixels.shape[:2]
        pixels, scaled = limit_size(pixels, self.max_side)
        notes = ()
        if scaled:
            notes = (f"the image was {width}×{height} px: downscaled to {pixels.shape[1]}×{pixels.shape[0]} px",)
        return Picture(pixels, Path(path).name, notes=notes)

    @staticmethod
    def scene(seed: int) -> Picture:
        """A generated scene with its true object mask (``camscope.data.generate``)."""
        from camscope.data import generate

        if seed < 0:
            raise InputError(f"the scene seed must be 0 or more, got {seed}")
        batch = generate(1, seed=int(seed))
        return Picture(batch.images[0], f"scene {seed}: {batch.class_names[batch.labels[0]]}", mask=batch.masks[0])

    # ---- computing -----------------------------------------------------------------------------------

    def model(self, name: str) -> nn.Module:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self._models:
                self._models[name] = load_model(name, weights=self._weights_source(name)).to(self.device)
            return self._models[name]

    def cell(self, model: str, method: str, picture: Picture, target: str = "") -> Cell:
        """Explain and score one (model, method) pair; cached; never raises for the user's input."""
        try:
            method = get_method(method).name
        except CamscopeError as exc:
            return Cell(model, method, target.strip(), error=str(exc))
        key = (model, method, picture.key, target.strip().lower())
        with self._guard:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        cell = Cell(model, method, target.strip())
        start = time.perf_counter()
        try:
            net = self.model(model)
            with self._locks[model]:
                self._compute(cell, net, method, picture)
        except CamscopeError as exc:
            cell.error = str(exc)
        except Exception as exc:  # a bug: the page gets one line, the server log the traceback
            log.exception("camscope app: %s × %s failed", model, method)
            cell.error = f"internal error ({type(exc).__name__}: {exc}); the server log has the details"
        cell.seconds = time.perf_counter() - start
        if cell.error is None:
            with self._guard:
                self._cache[key] = cell
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return cell

    def _compute(self, cell: Cell, net: nn.Module, method: str, picture: Picture) -> None:
        from camscope.metrics import transform_mask

        spec = get_spec(net)
        target = spec.parse_class(cell.target) if cell.target else None
        result = explain(net, picture.pixels, method, target)
        assert isinstance(result, Explanation)
        cell.explanation = result
        pixels = int(np.prod(spec.input_size[1:]))
        step = max(1, -(-pixels // self.curve_steps))
        scores = evaluate(net, picture.pixels, result, SCORE_METRICS, step=step)
        if picture.mask is not None:
            truth = transform_mask(picture.mask, spec.preprocess.resize, spec.preprocess.crop)[None]
            try:
                scores.update(evaluate(net, picture.pixels, result, SCENE_METRICS, ground_truth=truth))
            except CamscopeError as exc:  # e.g. the object lies in the border the centre crop cuts away
                cell.notes.append(f"no localization scores: {exc}")
        cell.scores.update({column: float(values[0]) for column, values in scores.items()})
        cell.curves.update({column: (np.asarray(x), np.asarray(y[0])) for column, (x, y) in scores.curves.items()})

    def run(
        self,
        models: Sequence[str],
        methods: Sequence[str],
        picture: Picture | None,
        target: str = "",
        cancel: threading.Event | None = None,
    ) -> Iterator[Cell]:
        """Cells model by model, method by method; stops between cells once ``cancel`` is set."""
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
                yield self.cell(model, method, picture, target)


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


def cell_title(cell: Cell) -> str:
    """Method, explained class and scores in a few short lines (or the error, wrapped)."""
    if cell.explanation is None:
        return "\n".join([cell.method, *textwrap.wrap(cell.error or "no result", 34)[:5]])
    e = cell.explanation
    name = next((n for i, n, _ in e.top_classes if i == e.target), str(e.target))
    lines = [f"{cell.method} → {name}"]
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
            figure = plot_curves(curves, title=metric, xlabel=f"fraction of pixels {verb}", ylabel="target probability")
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
            "target": "" if e is None else e.target,
            "class": "" if e is None else next((n for i, n, _ in e.top_classes if i == e.target), str(e.target)),
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
