"""``camscope explain``: overlay PNG (+ raw map) for images or generated synthetic scenes, and the top classes."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from camscope.api import VIEWS
from camscope.cli.options import add_device_option, parse_target, target_argument
from camscope.cli.outputs import check_file, check_folder, unique_stems
from camscope.core.errors import CamscopeError
from camscope.core.targets import BoxScoreTarget

RANDOM_BANNER = "WARNING: RANDOM WEIGHTS — this model was not trained; its maps mean nothing."


def register(sub: Any) -> None:
    p = sub.add_parser("explain", help="explain images with a CAM method", description=__doc__)
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files (or use --synthetic N)")
    p.add_argument("--model", required=True, help="zoo name (see `camscope zoo`) or any timm / torchvision name")
    p.add_argument("--method", default="gradcam", help="method name (default gradcam); see --list-methods")
    p.add_argument("--list-methods", action=_ListMethods, help="print the method names and their parameters, then exit")
    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--weights", help="weights file or folder (default: the zoo's search path)")
    weights.add_argument("--random-weights", action="store_true", help="untrained weights, for wiring tests only")
    p.add_argument("--download", action="store_true", help="download missing official weights (needs internet)")
    p.add_argument(
        "--target",
        type=target_argument,
        help="class index or name to explain (default: each image's prediction: top-1 class, the class "
        "a segmentation model predicts on most pixels, a detector's confident detections); 'box:X1,Y1,X2,Y2': "
        "the detection at that box, in the image's pixels; 'embedding': each image's own embedding (inner "
        "product, Label-Free XAI); 'similarity:REF.jpg': cosine to REF's embedding",
    )
    p.add_argument(
        "--backbone", action="store_true", help="explain the embedding (classifier removed): label-free methods"
    )
    p.add_argument("--layer", action="append", help="target layer path, e.g. layer4.2 (repeatable)")
    p.add_argument("--synthetic", type=int, metavar="N", help="explain N generated scenes with known objects")
    p.add_argument("--seed", type=int, default=0, help="seed of --synthetic scenes (default 0)")
    p.add_argument("--out", default="camscope_out", help="output PNG (one image) or folder (default camscope_out/)")
    p.add_argument(
        "--save-map",
        action="store_true",
        help="also save the raw map as .npy (named *.random-weights.npy for a random-weights model)",
    )
    p.add_argument("--aug-smooth", action="store_true", help="average over flips and brightness changes")
    p.add_argument("--eigen-smooth", action="store_true", help="first principal component of the weighted maps")
    p.add_argument(
        "--view",
        choices=VIEWS,
        default="original",
        help="draw the map over the original image at its own resolution (default; the border the model's "
        "centre crop cut away is dimmed) or over the model's input",
    )
    add_device_option(p)
    p.set_defaults(func=run)


class _ListMethods(argparse.Action):
    """``--list-methods``: acts while parsing (like ``--version``), so it needs no --model."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from camscope.methods import get_method, method_names

        for name in method_names():
            cls = get_method(name)
            params = ", ".join(cls.params)
            layers = "" if cls.takes_layers else "  [chooses its own layers]"
            print(f"{name:<20}{params}{layers}")
        parser.exit(0)


def synthetic_scenes(n: int, seed: int, mosaic: bool = False) -> tuple[Any, list[str]]:
    """``generate(n, seed)`` (or ``generate_mosaics``) and a readable name per scene (seed, index, class)."""
    from camscope.data import generate
    from camscope.data.mosaic import generate_mosaics

    batch = generate_mosaics(n, seed) if mosaic else generate(n, seed=seed)
    kind = "mosaic" if mosaic else "synthetic"
    return batch, [f"{kind}_{seed}_{i}_{batch.class_names[label]}" for i, label in enumerate(batch.labels)]


def _inputs(args: argparse.Namespace) -> tuple[list[Any], list[str], list[tuple[int, int]]]:
    """The images (files or generated scenes), a name for each, and each one's (width, height)."""
    if args.synthetic is not None and args.images:
        raise CamscopeError("give IMAGE files or --synthetic N, not both")
    if args.synthetic is not None and args.synthetic < 1:
        raise CamscopeError(f"--synthetic needs at least 1 scene, got {args.synthetic}")
    if args.synthetic:
        batch, names = synthetic_scenes(args.synthetic, args.seed)
        return list(batch.images), names, [(image.shape[1], image.shape[0]) for image in batch.images]
    if not args.images:
        raise CamscopeError("give at least one IMAGE, or --synthetic N")
    from camscope.data import load_image

    # decode every file before any model is built: a bad file fails fast, with its name; explain decodes
    # it again, so that several large images are never held at full resolution at once
    sizes = [load_image(path).size for path in args.images]
    return list(args.images), unique_stems(args.images), sizes


def _output_paths(out: str, stems: list[str], model: str, method: str) -> list[Path]:
    """One PNG per input (``--out x.png`` for a single one, else a folder), checked writable now."""
    target = Path(out)
    if len(stems) == 1 and target.suffix.lower() == ".png":
        return [check_file(target, "--out")]
    if target.suffix.lower() == ".png" and not target.is_dir():
        raise CamscopeError(f"--out {target} names one PNG file, but there are {len(stems)} images: give a folder")
    check_folder(target, "--out")
    safe_model = model.replace("/", "_").replace(":", "_")
    return [target / f"{stem}_{safe_model}_{method}.png" for stem in stems]


def map_path(png: Path, random_weights: bool) -> Path:
    """Where ``--save-map`` writes: beside the PNG; a random-weights map says so in its name."""
    return png.with_suffix(".random-weights.npy" if random_weights else ".npy")


def run(args: argparse.Namespace) -> int:
    from camscope.api import explain
    from camscope.core.devices import resolve_device
    from camscope.methods import get_method
    from camscope.models import load_model

    cls = get_method(args.method)  # unknown names fail before any model is built
    device = resolve_device(args.device)
    images, stems, sizes = _inputs(args)
    paths = _output_paths(args.out, stems, args.model, cls.name)  # before the work, not after it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the banner below says it once, plainly
        model = load_model(
            args.model,
            weights=args.weights,
            random_weights=args.random_weights,
            download=args.download,
            head=not args.backbone,
        )
    model.to(device)
    if args.random_weights:
        print(RANDOM_BANNER)
    target = parse_target(args.target, model, sizes)
    results = explain(
        model, images, cls, target, layers=args.layer, aug_smooth=args.aug_smooth, eigen_smooth=args.eigen_smooth
    )
    assert isinstance(results, list)
    for result, path in zip(results, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        result.save(path, view=args.view)
        top = ", ".join(f"{name} ({index}) {prob:.1%}" for index, name, prob in result.top_classes)
        where = ", ".join(result.layers) or "the input"
        print(f"{path}  [{cls.name} at {where}; explained {_explained(result)}]")
        if result.top_classes:
            print(f"  top-{len(result.top_classes)}: {top}")
        if args.save_map:
            raw = map_path(path, result.random_weights)
            np.save(raw, result.map)
            print(f"  map: {raw}")
    if args.random_weights:
        print(RANDOM_BANNER)
    return 0


def _explained(result: Any) -> str:
    """What the map explains, in words: a class, a detector's boxes, or a label-free target."""
    if result.target is not None:
        return f"class {result.target}"
    if isinstance(result.scored, BoxScoreTarget):
        boxes = len(result.scored.bounding_boxes)
        return f"{boxes} detection box(es)" if boxes else "no detection box (the target is zero)"
    return "a label-free target"
