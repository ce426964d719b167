"""``camscope evaluate``: explain images with a method and score the maps with faithfulness and
localization metrics — a table (or JSON) per image and the mean, optionally the deletion/insertion
curves as a PNG.

Ground truth for the localization metrics (pointing, energy_pointing, relevance_mass, relevance_rank)
comes from ``--boxes``: Pascal VOC XML files (ImageNet validation style), one per image in order, or
one JSON file ``{"image file name or stem": [[x0, y0, x1, y1], ...]}`` in pixel coordinates of the
original image. Boxes are scaled with the model's own resize and centre crop.

``--synthetic N`` scores N generated scenes instead of files (no files needed): their true object
masks are the ground truth, mapped through the same resize and crop, and the localization metrics
pointing and energy_pointing join the default metrics. With ``--mosaic`` the scenes are 2×2 mosaics,
two tiles of one class (``focus``): each is explained and scored for that class, its two tiles the
ground truth.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from camscope.cli.options import add_device_option, parse_target, target_argument
from camscope.cli.outputs import check_file
from camscope.core.errors import CamscopeError, MetricInputError, warn

RANDOM_BANNER = "WARNING: RANDOM WEIGHTS — this model was not trained; its scores mean nothing."
DEFAULT_METRICS = "deletion,insertion,avgdrop"
SYNTHETIC_METRICS = "deletion,insertion,avgdrop,pointing,energy_pointing"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a method's maps with faithfulness metrics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (or use --synthetic N)")
    p.add_argument("--model", required=True, help="zoo name (see `camscope zoo`) or any timm / torchvision name")
    p.add_argument("--method", default="gradcam", help="method name (default gradcam)")
    p.add_argument(
        "--metrics",
        help=f"comma-separated metric names (default {DEFAULT_METRICS}; with --synthetic "
        f"{SYNTHETIC_METRICS}); "
        "deletion, insertion, avgdrop, confidence_change, road, pointing, energy_pointing, "
        "relevance_mass, relevance_rank; Quantus's families: sparseness, complexity, effective_complexity, "
        "top_k_intersection, attribution_localisation, auc, focus (with --mosaic), segmentation, "
        "random_logit, mprt, smooth_mprt, efficient_mprt",
    )
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--weights", help="weights file or folder (default: the zoo's search path)")
    weights.add_argument("--random-weights", action="store_true", help="untrained weights, for wiring tests only")
    p.add_argument(
        "--target",
        type=target_argument,
        help="class index or name to explain and score (default: each image's top-1); 'box:X1,Y1,X2,Y2': a "
        "detector's detection at that box, in the image's pixels; 'embedding': each image's own embedding (inner "
        "product, Label-Free XAI); 'similarity:REF.jpg': cosine to REF's embedding — the curves then score that "
        "similarity",
    )
    p.add_argument(
        "--backbone",
        action="store_true",
        help="explain and score the embedding (classifier removed): label-free, each image by its own embedding",
    )
    p.add_argument("--layer", action="append", help="target layer path, e.g. layer4.2 (repeatable)")
    p.add_argument(
        "--boxes",
        action="append",
        metavar="FILE",
        help="ground-truth boxes: VOC XML (one per image, repeat) or one JSON file",
    )
    p.add_argument("--synthetic", type=int, metavar="N", help="score N generated scenes (true masks as ground truth)")
    p.add_argument("--seed", type=int, default=0, help="seed of --synthetic scenes (default 0)")
    p.add_argument(
        "--mosaic",
        action="store_true",
        help="with --synthetic: 2x2 mosaics, two tiles of one class, explained for that class (for focus)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="forward passes per batch (default 32)")
    p.add_argument("--step", type=int, help="pixels per deletion/insertion step (default: the image width)")
    p.add_argument("--json", action="store_true", help="print JSON (with curves) instead of a table")
    p.add_argument("--plot", metavar="PNG", help="write the deletion/insertion curves to this PNG")
    add_device_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camscope.api import evaluate, explain
    from camscope.core.devices import resolve_device
    from camscope.data import load_image
    from camscope.methods import get_method
    from camscope.metrics import get_metric
    from camscope.metrics.localization import scaled_tolerance
    from camscope.models import get_spec, load_model

    cls = get_method(args.method)  # unknown names fail before any model is built
    device = resolve_device(args.device)
    chosen = args.metrics or (SYNTHETIC_METRICS if args.synthetic else DEFAULT_METRICS)
    metrics = [get_metric(name.strip()) for name in chosen.split(",") if name.strip()]
    if not metrics:
        raise CamscopeError("--metrics names no metric")
    if args.synthetic is not None and (args.images or args.boxes):
        raise CamscopeError("give IMAGE files (with --boxes) or --synthetic N, not both")
    if args.plot:
        check_file(args.plot, "--plot")  # before the work, not after the table is printed
        if not any(column.curve for m in metrics for column in m.columns):
            raise MetricInputError("--plot needs a metric with curves (deletion, insertion or road)")
    spec = get_spec(args.model)
    boxes: np.ndarray | list[np.ndarray] | None
    if args.mosaic and args.synthetic is None:
        raise CamscopeError("--mosaic needs --synthetic N (the number of mosaics)")
    labels = None
    if args.synthetic is not None:
        pictures, names, boxes, labels = _synthetic(args.synthetic, args.seed, spec.preprocess, args.mosaic)
    elif args.images:
        pictures = [load_image(path) for path in args.images]
        names = [Path(p).name for p in args.images]
        boxes = _ground_truth(args, pictures, spec.preprocess) if args.boxes else None
    else:
        raise CamscopeError("give at least one IMAGE, or --synthetic N")
    if boxes is None and any(m.needs_ground_truth for m in metrics):
        needing = [m.name for m in metrics if m.needs_ground_truth]
        raise MetricInputError(f"metric(s) {', '.join(needing)} need ground truth: give --boxes FILE or --synthetic N")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the banner says it once, plainly
        model = load_model(
            args.model, weights=args.weights, random_weights=args.random_weights, head=not args.backbone
        ).to(device)
    if args.random_weights and not args.json:
        print(RANDOM_BANNER)
    images = [np.asarray(p) for p in pictures]
    target = parse_target(args.target, model, [(image.shape[1], image.shape[0]) for image in images])
    if args.mosaic and target is None and labels is not None:
        target = [int(label) for label in labels]  # a mosaic is about its target class, not the top-1
    results = explain(model, images, cls, target, layers=args.layer)
    assert isinstance(results, list)
    text = args.target or ""
    label_free = args.backbone or text == "embedding" or text.startswith("similarity:")
    # label-free: explain() and evaluate() derive the same similarity target from the images themselves;
    # otherwise evaluate() scores what each explanation explains (a class, a detector's boxes)
    shown = text or ("embedding" if label_free else "detections")
    targets = [r.target if r.target is not None else shown for r in results]
    score_targets: Any = target if label_free else None
    # the shared settings, passed on only where a chosen metric takes them
    tolerance = round(scaled_tolerance(spec.input_size[-1]), 2)  # TorchRay's 15 px belongs to ~224-px inputs
    settings = {"batch_size": args.batch_size, "tolerance": tolerance}
    settings |= {"step": args.step} if args.step is not None else {}
    settings = {k: v for k, v in settings.items() if any(m.takes(k) for m in metrics)}
    scores = evaluate(model, images, results, [m.name for m in metrics], score_targets, ground_truth=boxes, **settings)
    curves = _named_curves(metrics, scores.curves)
    columns = dict(scores)
    for column, values in columns.items():
        bad = [names[i] for i, v in enumerate(np.asarray(values, dtype=float)) if not np.isfinite(v)]
        if bad:
            warn(f"{column} is NaN or infinite for {', '.join(bad)}: the model's outputs are not finite there")
    if args.json:
        print(json.dumps(_as_json(args, names, targets, columns, curves), indent=2))
    else:
        if "tolerance" in settings:
            print(f"pointing tolerance: {tolerance} px (TorchRay's 15 px at 224 px, scaled to the model's input)")
        _print_table(names, targets, columns)
    if args.plot:
        _plot(Path(args.plot), names, curves, bool(args.random_weights), scores.score)
        if not args.json:
            print(f"curves: {args.plot}")
    if args.random_weights and not args.json:
        print(RANDOM_BANNER)
    return 0


def _named_curves(metrics: list[Any], curves: dict[str, tuple[list[float], np.ndarray]]) -> dict[str, Any]:
    """Curves keyed by their declared name ("deletion"), with the column declaration alongside."""
    out = {}
    for metric in metrics:
        for column in metric.columns:
            if column.curve and column.name in curves:
                out[column.curve] = (column, *curves[column.name])
    return out


def _synthetic(
    n: int, seed: int, preprocess: Any, mosaic: bool = False
) -> tuple[list[Any], list[str], np.ndarray, np.ndarray]:
    """Generated scenes (or mosaics) as PIL images, their names, their true masks in the model's input
    space, and their classes."""
    from PIL import Image

    from camscope.cli.explain import synthetic_scenes
    from camscope.metrics.groundtruth import transform_mask

    if n < 1:
        raise CamscopeError(f"--synthetic needs at least 1 scene, got {n}")
    batch, names = synthetic_scenes(n, seed, mosaic)
    masks = np.stack([transform_mask(m, preprocess.resize, preprocess.crop) for m in batch.masks])
    return [Image.fromarray(image) for image in batch.images], names, masks, batch.labels


def _ground_truth(args: argparse.Namespace, pictures: list[Any], preprocess: Any) -> list[np.ndarray]:
    from camscope.metrics import transform_boxes
    from camscope.metrics.groundtruth import load_boxes_json, voc_boxes_for_image

    files = [Path(f) for f in args.boxes]
    if len(files) == 1 and files[0].suffix.lower() == ".json":
        table = load_boxes_json(files[0])
        raw, sources = [], []
        for path in args.images:
            entry = table.get(Path(path).name, table.get(Path(path).stem))
            if entry is None:
                raise MetricInputError(f"{files[0]} has no boxes for {Path(path).name}")
            raw.append(entry)
            sources.append(f"{files[0]} ({Path(path).name})")
    else:
        if len(files) != len(args.images):
            raise MetricInputError(f"got {len(files)} --boxes files for {len(args.images)} images: give one each")
        raw = [voc_boxes_for_image(f, p.size, Path(i).name) for f, p, i in zip(files, pictures, args.images)]
        sources = [str(f) for f in files]
    out = []
    for path, picture, box, source in zip(args.images, pictures, raw, sources):
        moved = transform_boxes(box, picture.size, preprocess.resize, preprocess.crop, what=source)
        if len(moved) == 0:
            raise MetricInputError(f"no box of {Path(path).name} ({source}) survives the model's centre crop")
        out.append(moved)
    return out


def _print_table(names: list[str], targets: list[Any], columns: dict[str, np.ndarray]) -> None:
    header = ["image", "target", *columns]
    rows = [
        [name, str(t), *(f"{columns[c][i]:.4f}" for c in columns)] for i, (name, t) in enumerate(zip(names, targets))
    ]
    rows.append(["mean", "", *(f"{float(np.mean(columns[c])):.4f}" for c in columns)])
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))))


def _as_json(
    args: argparse.Namespace,
    names: list[str],
    targets: list[Any],
    columns: dict[str, np.ndarray],
    curves: dict[str, Any],
) -> dict[str, Any]:
    images = []
    for i, name in enumerate(names):
        row: dict[str, Any] = {"image": name, "target": targets[i]}
        row.update({c: _finite_or_none(v[i]) for c, v in columns.items()})
        row.update({f"{k}_curve": ys[i].tolist() for k, (_, _, ys) in curves.items()})
        images.append(row)
    return {
        "model": args.model,
        "method": args.method,
        "random_weights": bool(args.random_weights),
        "images": images,
        "mean": {c: _finite_or_none(np.mean(v)) for c, v in columns.items()},
    }


def _finite_or_none(value: Any) -> float | None:
    """JSON has no NaN: a non-finite score is null (and was warned about)."""
    number = float(value)
    return number if np.isfinite(number) else None


def _plot(path: Path, names: list[str], curves: dict[str, Any], random_weights: bool, score: str) -> None:
    """One panel per curve (deletion, insertion...), one line per image, side by side in one PNG."""
    from camscope.viz import figure_to_array, plot_curves, save_png

    if not curves:
        raise MetricInputError("--plot needs a metric with curves (deletion, insertion or road)")
    panels = []
    for label, (column, x, ys) in curves.items():
        figure = plot_curves(
            {name: (x, y) for name, y in zip(names, ys)},
            title=f"{label} (RANDOM WEIGHTS)" if random_weights else label,
            xlabel=column.curve_x,
            ylabel=score,
        )
        panels.append(figure_to_array(figure))
    height = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255) for p in panels]
    picture = np.concatenate(padded, axis=1)
    if random_weights:  # a red band on top: a random model's curves must never pass for a trained one's
        band = np.zeros((max(8, height // 16), picture.shape[1], 3), np.uint8)
        band[...] = (220, 0, 0)
        picture = np.concatenate([band, picture], axis=0)
    save_png(picture, path)
