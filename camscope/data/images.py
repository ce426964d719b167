"""The one image loader: every image that enters camscope (CLI paths, API paths, arrays) passes here.

Why one loader: a model sees an 8-bit RGB array. Every other representation (grayscale, alpha, palette,
16-bit, CMYK, a phone photo stored sideways with an EXIF orientation tag) must be converted the same way
everywhere, or the same file explains differently through the CLI and the API. Every problem a user's file
can have becomes an :class:`~camscope.core.errors.ImageLoadError` with a one-line message naming the path.

Conversion rules:

* transparency (RGBA, LA, palette with a transparent colour) is composited on **white**. Dropping the
  alpha channel would expose whatever colour the encoder left under transparent pixels (often black or
  garbage); white is what image viewers and browsers show, so the model sees what the user saw.
* 16-bit samples (modes ``I;16*``, which Pillow uses for 16-bit PNG/TIFF) are scaled by 255/65535, so
  full white stays full white. 32-bit integers (mode ``I``: 32-bit TIFFs, ``convert("I")``) are read by
  the range their values really use: within 0..255 as 8-bit (dividing them by 257 would give a black
  image), within 0..65535 as 16-bit, anything wider stretched from its own minimum and maximum to 0..255
  with a warning (clipping it at 65535 would turn most of it white). 32-bit float (mode ``F``) is read
  as [0, 1] when it lies there, else clipped to [0, 255].
* EXIF orientation is applied, then the tag is gone: pixels are stored upright.
* multi-frame files (GIF, TIFF stacks) give their first frame.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from camscope.core.errors import ImageLoadError, warn

ImageLike = np.ndarray | Image.Image | str | os.PathLike[str]

_WHITE = (255, 255, 255)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Read an image file fully and return it as an upright RGB PIL image.

    The whole file is decoded here, so a truncated or corrupt file fails now with a clear message rather
    than later inside a model call.
    """
    file = Path(path)
    _check_file(file)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            with Image.open(file) as img:
                img.load()  # force the full decode: truncation shows up here
                _warn_float_range(img, file)
                ImageOps.exif_transpose(img, in_place=True)  # in place: a large image is never copied
                picture = to_rgb(img, name=f"image {file}")
    except Exception as exc:  # decoders raise OSError, SyntaxError, struct.error, ... on corrupt data
        raise ImageLoadError(f"cannot load image {file}: {_decode_problem(exc)}") from None
    for record in caught:  # Pillow's multi-line bomb warning becomes ours; anything else passes through
        if issubclass(record.category, Image.DecompressionBombWarning):
            warn(f"image {file} is very large ({picture.width}x{picture.height} pixels): decoding it costs much memory")
        else:
            warnings.warn_explicit(record.message, record.category, record.filename, record.lineno)
    return picture


def _warn_float_range(img: Image.Image, file: Path) -> None:
    """A 32-bit float image outside [0, 1] is read as 0..255 and clipped: say so, it is probably not what was meant."""
    if img.mode != "F":
        return
    values = np.asarray(img)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if finite.size != values.size or low < 0.0 or high > 1.0:
        extra = ", and NaN/inf pixels (read as 0)" if finite.size != values.size else ""
        warn(
            f"float image {file} has values in [{low:.3g}, {high:.3g}]{extra}, outside [0, 1]: "
            "read as 0..255 and clipped; convert it to 8-bit or [0, 1] floats to be sure"
        )


def load_image_array(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as an upright uint8 (H, W, 3) RGB array (see :func:`load_image`)."""
    return np.asarray(load_image(path), dtype=np.uint8).copy()


def as_rgb_array(image: ImageLike) -> np.ndarray:
    """Accept a path, a PIL image or a numpy array and return uint8 (H, W, 3) RGB.

    Lets every API take whichever the caller has. Arrays may be (H, W), (H, W, 1), (H, W, 3) or
    (H, W, 4) (alpha composited on white); uint8 as is, uint16 scaled like 16-bit files, bool as
    black/white, float read as [0, 1] (anything outside is an error, not a guess).
    """
    if isinstance(image, (str, os.PathLike)):
        return load_image_array(image)
    if isinstance(image, Image.Image):
        return np.asarray(to_rgb(image), dtype=np.uint8).copy()
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image)
    raise ImageLoadError(f"expected an image path, PIL image or numpy array, got {type(image).__name__}")


def as_rgb_image(image: ImageLike) -> Image.Image:
    """Like :func:`as_rgb_array`, as an RGB PIL image (possibly ``image`` itself, never to be modified).

    Why: a PIL image holds a large picture once, where the array route copies it twice more; the model's
    preprocessing reads it directly and :func:`limit_pixels` shrinks it, so memory stays bounded.
    """
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, np.ndarray):
        return Image.fromarray(_array_to_rgb(image))
    raise ImageLoadError(f"expected an image path, PIL image or numpy array, got {type(image).__name__}")


def limit_pixels(image: Image.Image, max_pixels: int) -> tuple[np.ndarray, bool]:
    """An RGB PIL image as a uint8 (H, W, 3) array of at most ``max_pixels`` pixels (aspect ratio kept),
    and whether it was downscaled (callers say so)."""
    width, height = image.size
    if width * height <= max_pixels:
        return np.array(image, dtype=np.uint8), False
    scale = (max_pixels / (width * height)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    small = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.array(small, dtype=np.uint8), True


def limit_size(image: np.ndarray, max_side: int) -> tuple[np.ndarray, bool]:
    """Downscale a uint8 (H, W, 3) image so its longer side is at most ``max_side`` (aspect ratio kept).

    Why: the model sees a 64- or 224-px crop anyway; a 6000-px photo only costs memory and time in the
    overlays. Returns the image and whether it was downscaled (callers say so to the user).
    """
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image, False
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS), dtype=np.uint8), True


def to_rgb(img: Image.Image, name: str = "the image") -> Image.Image:
    """Convert a PIL image of any mode to RGB by the module's rules (alpha on white, 16-bit scaled);
    ``name`` says which image in a warning. An RGB image is returned as it is, not copied."""
    if img.mode == "RGB":
        return img
    if img.mode in _SIXTEEN_BIT_MODES or img.mode in ("F", "I"):
        return _high_depth_to_rgb(img, name)
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        return _composite_on_white(img)
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageLoadError(f"cannot convert mode {img.mode!r} to RGB ({_one_line(exc)})") from None


def _check_file(file: Path) -> None:
    """Turn the path problems Pillow reports confusingly into plain messages."""
    if not file.exists():
        raise ImageLoadError(f"cannot load image {file}: no such file")
    if file.is_dir():
        raise ImageLoadError(f"cannot load image {file}: is a directory, not an image file")
    special = special_file(file)
    if special:
        raise ImageLoadError(f"cannot load image {file}: {special}")
    if file.stat().st_size == 0:
        raise ImageLoadError(f"cannot load image {file}: the file is empty")


def special_file(path: Path) -> str | None:
    """What an existing path that is not a regular file or folder is, as the end of an error message, or None.

    Why: a FIFO or a device (``/dev/zero``) reports size 0 (it is not "empty"), and reading it may block
    forever or never end.
    """
    if not path.exists() or path.is_dir() or path.is_file():
        return None
    kind = (
        "a named pipe (FIFO)"
        if path.is_fifo()
        else "a device"
        if path.is_char_device() or path.is_block_device()
        else "a socket or other special file"
    )
    return f"is {kind}, not a regular file: save the data to a file first"


def _decode_problem(exc: Exception) -> str:
    """Say in plain words what went wrong while decoding (the message after the path)."""
    if isinstance(exc, ImageLoadError):
        return str(exc)
    if isinstance(exc, Image.DecompressionBombError):
        return f"too large to decode safely ({_one_line(exc)})"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image, or a format Pillow cannot read"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"corrupt or truncated ({_one_line(exc)})"


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _high_depth_to_rgb(img: Image.Image, name: str) -> Image.Image:
    values = np.asarray(img)
    if img.mode == "F":
        gray = _float_to_uint8(values)
    elif img.mode == "I":
        gray = _int32_to_uint8(values, name)
    else:
        gray = _sixteen_bit_to_uint8(values)
    return Image.fromarray(np.repeat(gray[..., None], 3, axis=2), mode="RGB")


def _int32_to_uint8(values: np.ndarray, name: str) -> np.ndarray:
    """32-bit integer samples by the range they use (see the module's rules)."""
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if low >= 0 and high <= 255:
        return values.astype(np.uint8)
    if low >= 0 and high <= 65535:
        return _sixteen_bit_to_uint8(values)
    warn(
        f"{name} is a 32-bit integer image with values in [{low}, {high}], beyond 16 bits: "
        f"stretched from [{low}, {high}] to 0..255; convert it to 8 or 16 bits to choose the range yourself"
    )
    span = max(high - low, 1)
    return np.rint((values.astype(np.float64) - low) * (255.0 / span)).astype(np.uint8)


def _sixteen_bit_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map 0..65535 to 0..255 with rounding (65535 / 257 == 255 exactly)."""
    clipped = np.clip(values.astype(np.float64), 0, 65535)
    return np.rint(clipped / 257.0).astype(np.uint8)


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(values.astype(np.float64), nan=0.0)
    if values.size and values.min() >= 0.0 and values.max() <= 1.0:
        values = values * 255.0
    return np.rint(np.clip(values, 0, 255)).astype(np.uint8)


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        channels_first = array.ndim == 3 and array.shape[0] in (3, 4)
        hint = " (channels first? transpose to (H, W, C))" if channels_first else ""
        shape = array.shape
        raise ImageLoadError(f"expected an image array (H, W), (H, W, 3) or (H, W, 4), got {shape}{hint}")
    pixels = _array_to_uint8(array)
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    if pixels.shape[2] == 4:
        return np.asarray(_composite_on_white(Image.fromarray(pixels, mode="RGBA")), dtype=np.uint8).copy()
    return np.ascontiguousarray(pixels)


def _array_to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return _sixteen_bit_to_uint8(array)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ImageLoadError(f"integer image values must lie in [0, 255] for dtype {array.dtype}")
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ImageLoadError("image array contains NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ImageLoadError(
                f"float image values must lie in [0, 1], got [{low:.3g}, {high:.3g}]; pass uint8 for 0..255"
            )
        return np.rint(array * 255.0).astype(np.uint8)
    raise ImageLoadError(f"unsupported image array dtype {array.dtype}; use uint8, uint16, bool or float")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
