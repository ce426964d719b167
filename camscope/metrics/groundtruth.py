"""Ground truth for the localization metrics: boxes, masks, Pascal VOC XML files.

Coordinates are continuous pixel coordinates: pixel ``(row r, column c)`` covers ``[c, c+1) × [r, r+1)``,
and a box is ``(x0, y0, x1, y1)`` with ``x0 < x1``, ``y0 < y1``. A box covers every pixel it overlaps
with positive area, so a box never rasterises to nothing. Pascal VOC / ImageNet validation XML files
store 1-based inclusive pixel indices; :func:`load_voc_boxes` converts them (``xmin − 1``, ``xmax``).

Ground truth given on the original image is brought to the model's input with
:func:`transform_boxes` / :func:`transform_mask`, which apply the same geometry as the evaluation
transform ``Resize(resize)`` + ``CenterCrop(crop)`` of torchvision/timm (resize: an int resizes the
shorter side keeping the aspect ratio, a pair ``(h, w)`` resizes exactly; crop: int or ``(h, w)``;
either may be None). The zoo's preprocessing supplies the numbers; nothing here depends on it. The geometry itself
(and its inverse, for maps) is :mod:`camscope.data.geometry`.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from camscope.core.errors import MetricInputError
from camscope.data.geometry import Size, crop_offsets, resized_size

GroundTruth = np.ndarray | torch.Tensor | Sequence[object]


@dataclass
class VocAnnotation:
    """Boxes of one Pascal VOC XML file, in continuous pixel coordinates of the original image."""

    width: int
    height: int
    boxes: np.ndarray
    names: list[str] = field(default_factory=list)


def load_voc_boxes(path: str | Path, names: Sequence[str] | None = None) -> VocAnnotation:
    """Read a Pascal VOC XML annotation (as ImageNet's validation set ships them).

    ``names`` keeps only objects of those classes (e.g. the WordNet id of the image's label).
    Anything malformed (not XML, missing or non-numeric sizes and coordinates, boxes outside the
    image) is a :class:`MetricInputError` naming the file.
    """
    _check_regular(path, "the VOC annotation")
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise MetricInputError(f"cannot read the VOC annotation {path}: {exc}") from None
    size = root.find("size")
    if size is None:
        raise MetricInputError(f"the VOC annotation {path} has no <size> element")
    width, height = (_number(size, tag, path, integer=True) for tag in ("width", "height"))
    if width < 1 or height < 1:
        raise MetricInputError(f"the VOC annotation {path} gives an image size of {width}x{height}")
    boxes, kept = [], []
    for obj in root.iter("object"):
        name = _text(obj, "name", path)
        if names is not None and name not in names:
            continue
        box = obj.find("bndbox")
        if box is None:
            raise MetricInputError(f"an object in {path} has no <bndbox>")
        xmin, ymin, xmax, ymax = (_number(box, k, path) for k in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append((xmin - 1, ymin - 1, xmax, ymax))
        kept.append(name)
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    check_boxes(array, int(height), int(width), what=str(path))
    return VocAnnotation(width=int(width), height=int(height), boxes=array, names=kept)


def voc_boxes_for_image(path: str | Path, image_size: tuple[int, int], image: str = "the image") -> np.ndarray:
    """Boxes of a VOC file for an image of ``image_size = (width, height)``.

    A file whose ``<size>`` differs from the image's belongs to another image (or another copy of
    it): refused, never applied unscaled. The same rule holds in ``evaluate`` and in sweeps.
    """
    ann = load_voc_boxes(path)
    if (ann.width, ann.height) != tuple(image_size):
        raise MetricInputError(
            f"{path} is for a {ann.width}x{ann.height} image, but {image} is {image_size[0]}x{image_size[1]}: "
            "is it the annotation of this image?"
        )
    if len(ann.boxes) == 0:
        raise MetricInputError(f"the VOC annotation {path} has no <object>: there is no box to score {image} against")
    return ann.boxes


def _check_regular(path: str | Path, what: str) -> None:
    from camscope.data.images import special_file

    special = special_file(Path(path))
    if special:
        raise MetricInputError(f"cannot read {what} {path}: it {special}")


def load_boxes_json(path: str | Path) -> dict[str, np.ndarray]:
    """Read ``{"image name or stem": [[x0, y0, x1, y1], ...]}``; every entry checked, the file named in errors."""
    import json

    _check_regular(path, "boxes")
    try:
        table = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MetricInputError(f"cannot read boxes from {path}: {_one_line(exc)}") from None
    if not isinstance(table, dict):
        raise MetricInputError(
            f"{path}: expected a JSON object {{image name: [[x0, y0, x1, y1], ...]}}, got a {type(table).__name__}"
        )
    out = {}
    for key, entry in table.items():
        out[str(key)] = _box_rows(entry, f"{path}: boxes of {key!r}")
    return out


def _box_rows(entry: object, what: str) -> np.ndarray:
    """A JSON entry as a float (K, 4) array: one box [x0, y0, x1, y1] or a list of them."""
    rows = entry if isinstance(entry, list) and entry and isinstance(entry[0], list) else [entry]
    if not isinstance(entry, list) or not entry:
        raise MetricInputError(f"{what}: expected a list of [x0, y0, x1, y1] boxes, got {_short(entry)}")
    for row in rows:
        if not isinstance(row, list) or len(row) != 4:
            raise MetricInputError(f"{what}: each box needs 4 numbers [x0, y0, x1, y1], got {_short(row)}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in row):
            raise MetricInputError(f"{what}: box {_short(row)} holds a value that is not a finite number")
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def _short(value: object, limit: int = 60) -> str:
    text = json_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_text(value: object) -> str:
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _text(node: ET.Element, tag: str, path: str | Path) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise MetricInputError(f"the VOC annotation {path} lacks <{tag}>")
    return child.text.strip()


def _number(node: ET.Element, tag: str, path: str | Path, integer: bool = False) -> float:
    text = _text(node, tag, path)
    try:
        value = float(text)
    except ValueError:
        raise MetricInputError(f"the VOC annotation {path}: <{tag}> is {text!r}, not a number") from None
    if not math.isfinite(value) or (integer and value != int(value)):
        kind = "a whole number" if integer else "a finite number"
        raise MetricInputError(f"the VOC annotation {path}: <{tag}> is {text!r}, not {kind}")
    return value


def _box_text(box: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in box) + ")"


def check_boxes(boxes: np.ndarray, height: int, width: int, what: str = "boxes") -> np.ndarray:
    """Boxes as a float (K, 4) array; boxes outside the image or empty raise MetricInputError."""
    try:
        array = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise MetricInputError(f"{what}: boxes must be numbers x0, y0, x1, y1") from None
    if array.ndim == 1 and array.shape == (4,):
        array = array[None]
    if array.ndim != 2 or array.shape[1] != 4:
        raise MetricInputError(f"{what}: expected boxes as (K, 4) rows of x0, y0, x1, y1, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise MetricInputError(f"{what}: boxes hold NaN or infinite coordinates")
    for x0, y0, x1, y1 in array:
        box = _box_text((x0, y0, x1, y1))
        if not (x0 < x1 and y0 < y1):
            raise MetricInputError(f"{what}: box {box} is empty (need x0 < x1 and y0 < y1)")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise MetricInputError(f"{what}: box {box} lies outside the {width}x{height} image")
    return array


def boxes_to_mask(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean (H, W) mask of the union of the boxes (every pixel a box overlaps)."""
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in check_boxes(boxes, height, width):
        mask[int(np.floor(y0)) : int(np.ceil(y1)), int(np.floor(x0)) : int(np.ceil(x1))] = True
    return mask


def transform_boxes(
    boxes: np.ndarray, image_size: tuple[int, int], resize: Size = None, crop: Size = None, what: str = "boxes"
) -> np.ndarray:
    """Map boxes of an image of ``image_size = (width, height)`` through Resize + CenterCrop.

    Boxes are clipped to the crop; a box entirely cut away is dropped (the result may be empty).
    """
    width, height = image_size
    array = check_boxes(boxes, height, width, what)
    new_h, new_w = resized_size(height, width, resize)
    scaled = array * np.array([new_w / width, new_h / height, new_w / width, new_h / height])
    top, left, ch, cw = crop_offsets(new_h, new_w, crop)
    moved = scaled - np.array([left, top, left, top])
    moved[:, [0, 2]] = moved[:, [0, 2]].clip(0, cw)
    moved[:, [1, 3]] = moved[:, [1, 3]].clip(0, ch)
    keep = (moved[:, 2] > moved[:, 0]) & (moved[:, 3] > moved[:, 1])
    kept: np.ndarray = moved[keep]
    return kept


def transform_mask(mask: np.ndarray | torch.Tensor, resize: Size = None, crop: Size = None) -> np.ndarray:
    """Map an (H, W) mask through Resize (nearest neighbour) + CenterCrop, as the image is mapped."""
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    if m.ndim != 2:
        raise MetricInputError(f"expected an (H, W) mask, got shape {tuple(m.shape)}")
    new_h, new_w = resized_size(m.shape[0], m.shape[1], resize)
    m = torch.nn.functional.interpolate(m[None, None], size=(new_h, new_w), mode="nearest-exact")[0, 0]
    top, left, ch, cw = crop_offsets(new_h, new_w, crop)
    out = torch.zeros(ch, cw)
    src = m[max(top, 0) : top + ch, max(left, 0) : left + cw]
    out[max(-top, 0) : max(-top, 0) + src.shape[0], max(-left, 0) : max(-left, 0) + src.shape[1]] = src
    return out.numpy() > 0.5


def ground_truth_masks(ground_truth: GroundTruth, n: int, height: int, width: int) -> np.ndarray:
    """Boolean (N, H, W) masks from masks (N, H, W) or from one box array (K_i, 4) per image.

    Empty masks raise MetricInputError: an image without ground truth cannot be scored.
    """
    if isinstance(ground_truth, (np.ndarray, torch.Tensor)) and np.asarray(ground_truth).ndim == 3:
        masks = np.asarray(ground_truth.cpu() if isinstance(ground_truth, torch.Tensor) else ground_truth)
        if masks.shape != (n, height, width):
            raise MetricInputError(
                f"ground-truth masks of shape {masks.shape} do not fit the maps: expected {(n, height, width)}"
            )
        masks = masks.astype(bool)
    else:
        items = list(ground_truth)
        if len(items) != n:
            raise MetricInputError(f"got ground truth for {len(items)} images, but {n} maps")
        masks = np.stack([boxes_to_mask(np.asarray(b), height, width) for b in items])
    empty = [i for i in range(n) if not masks[i].any()]
    if empty:
        raise MetricInputError(f"the ground-truth mask of image(s) {empty} is empty: nothing to point at")
    return masks
