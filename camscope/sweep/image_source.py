"""The sweep's images: stable ids, decoding with per-image failures, and ground truth when there is any.

A file that cannot be decoded is not fatal: it becomes a failed entry with its reason (the loader's
one-line :class:`~camscope.core.errors.ImageLoadError`), and the rest of the shard goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from camscope.core.errors import CamscopeError
from camscope.sweep.config import ImageSource

if TYPE_CHECKING:
    from camscope.data.synthetic import SyntheticBatch


@dataclass(frozen=True)
class LoadedImage:
    """One decoded image (uint8 H×W×3) with its label and object mask at the image's own size, if known."""

    picture: np.ndarray
    label: int | None = None
    mask: np.ndarray | None = None


def image_ids(source: ImageSource) -> list[str]:
    """One stable id per image, in sweep order: the path relative to the folder, or the synthetic index."""
    if source.synthetic:
        kind = "mosaic" if source.mosaic else "synthetic"
        return [f"{kind}-{source.seed}-{i:05d}" for i in range(source.synthetic)]
    root = Path(source.root) if source.root else None
    out = []
    for p in source.paths:
        path = Path(p)
        out.append(str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path))
    return out


class ImageReader:
    """Decodes images of one source; synthetic scenes are rendered once and kept (they are small)."""

    def __init__(self, source: ImageSource) -> None:
        self.source = source
        self._synthetic: SyntheticBatch | None = None

    def read(self, index: int) -> LoadedImage | str:
        """The image at ``index``, or the reason it could not be read."""
        if self.source.synthetic:
            if self._synthetic is None:
                from camscope.data import generate
                from camscope.data.mosaic import generate_mosaics

                make = generate_mosaics if self.source.mosaic else generate
                self._synthetic = make(self.source.synthetic, self.source.seed, self.source.size)
            batch = self._synthetic
            return LoadedImage(batch.images[index], int(batch.labels[index]), batch.masks[index])
        from camscope.data import load_image_array

        path = Path(self.source.paths[index])
        try:
            picture = load_image_array(path)
            mask = self._annotation(path, picture.shape[:2])
        except CamscopeError as exc:  # this image fails, with its own reason; the shard goes on
            return str(exc)
        except Exception as exc:  # never let one file fail (or be blamed on) its neighbours
            return f"{path}: {type(exc).__name__}: {' '.join(str(exc).split())}"
        return LoadedImage(picture, None, mask)

    def _annotation(self, image: Path, shape: tuple[int, ...]) -> np.ndarray | None:
        """Mask from ``<stem>.xml`` (Pascal VOC boxes) or ``<stem>.png`` (non-zero pixels) in the folder."""
        if not self.source.annotations:
            return None
        from camscope.metrics import boxes_to_mask
        from camscope.metrics.groundtruth import voc_boxes_for_image

        folder = Path(self.source.annotations)
        xml, png = folder / f"{image.stem}.xml", folder / f"{image.stem}.png"
        if xml.is_file():
            boxes = voc_boxes_for_image(xml, (shape[1], shape[0]), str(image))
            return boxes_to_mask(boxes, shape[0], shape[1]) if len(boxes) else None
        if png.is_file():
            from camscope.data import load_image_array

            mask = np.asarray(load_image_array(png).any(axis=-1))
            if mask.shape != tuple(shape):
                raise CamscopeError(f"mask {png} is {mask.shape[1]}x{mask.shape[0]}, {image} is {shape[1]}x{shape[0]}")
            return mask
        return None
