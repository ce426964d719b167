"""The evaluation transform a set of weights was published with.

CAMs and faithfulness scores are only meaningful on inputs the model was evaluated on, so each
spec carries the exact resize / crop / interpolation / normalisation of the original repository
(the seed got mean/std wrong for several models). Images are transformed as PIL images, like the
original evaluation scripts, so the resampling filters match bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from camscope.core.errors import ImageLoadError
from camscope.data.imagenet import IMAGENET_MEAN, IMAGENET_STD

_INTERPOLATIONS = {
    "nearest": T.InterpolationMode.NEAREST,
    "bilinear": T.InterpolationMode.BILINEAR,
    "bicubic": T.InterpolationMode.BICUBIC,
    "lanczos": T.InterpolationMode.LANCZOS,
    "box": T.InterpolationMode.BOX,
    "hamming": T.InterpolationMode.HAMMING,
}


@dataclass(frozen=True)
class Preprocess:
    """Resize, centre-crop, scale to [0, 1], normalise.

    ``resize`` is the length of the shorter side after resizing (an int), or an exact ``(h, w)``
    ("squash" resize); ``crop`` is the ``(h, w)`` centre crop fed to the model.
    """

    resize: int | tuple[int, int]
    crop: tuple[int, int]
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}; use one of {sorted(_INTERPOLATIONS)}")

    @classmethod
    def imagenet(cls, resize: int, crop: int, interpolation: str) -> Preprocess:
        """The usual ImageNet evaluation transform: shorter side to ``resize``, centre crop ``crop``."""
        return cls(resize=resize, crop=(crop, crop), interpolation=interpolation)

    @property
    def input_size(self) -> tuple[int, int, int]:
        return (3, *self.crop)

    @property
    def crop_pct(self) -> float:
        side = self.resize if isinstance(self.resize, int) else self.resize[0]
        return self.crop[0] / side

    def transform(self) -> T.Compose:
        """The torchvision pipeline (PIL image → normalised tensor)."""
        return T.Compose(
            [
                T.Resize(self.resize, interpolation=_INTERPOLATIONS[self.interpolation]),
                T.CenterCrop(self.crop),
                T.ToTensor(),
                T.Normalize(self.mean, self.std),
            ]
        )

    def __call__(self, image: Any) -> torch.Tensor:
        """PIL image or uint8 H×W×3 array → float tensor 3×H×W, normalised."""
        tensor: torch.Tensor = self.transform()(to_pil_rgb(image))
        return tensor

    def describe(self) -> str:
        resize = f"shorter side {self.resize}" if isinstance(self.resize, int) else f"{self.resize}"
        return (
            f"resize {resize} {self.interpolation} → centre crop {self.crop[0]}×{self.crop[1]}, "
            f"mean {_fmt(self.mean)} std {_fmt(self.std)}"
        )


def to_pil_rgb(image: Any) -> Image.Image:
    """Accept a PIL image or a uint8 H×W×3 (or H×W) array; anything else is a user error."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ImageLoadError(
                f"preprocess expects a uint8 image array, got dtype {image.dtype}; "
                "convert with (array * 255).round().astype('uint8') if it is in [0, 1]"
            )
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4)):
            return Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[2] == 1 else image).convert(
                "RGB"
            )
        raise ImageLoadError(f"preprocess expects an H×W×3 image array, got shape {tuple(image.shape)}")
    raise ImageLoadError(f"preprocess expects a PIL image or a uint8 array, got {type(image).__name__}")


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def preprocess_image(
    img: np.ndarray, mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5)
) -> torch.Tensor:
    """pytorch-grad-cam's ``preprocess_image``: an (H, W, C) array → a normalised (1, C, H, W) tensor, no
    resize. A float array is taken as already in [0, 1]; a uint8 one is divided by 255 (torchvision's
    ``ToTensor`` rule). Its default mean and std are 0.5, not ImageNet's: pass the model's.
    """
    tensor: torch.Tensor = T.Compose([T.ToTensor(), T.Normalize(mean=list(mean), std=list(std))])(np.array(img))
    return tensor.unsqueeze(0)
