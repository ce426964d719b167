"""Batched view augmentations for self-supervised pre-training (DINO multi-crop, MoCo v3 pairs).

Why batched tensor ops instead of per-image torchvision transforms: on two shared CPU cores the
per-image PIL pipeline would cost as much as the model. A random resized crop is one affine grid
per image and a single ``grid_sample`` for the batch; colour jitter is a few broadcast ops.

The colour augmentations matter more here than on photographs: in the synthetic data the class is
carried by shape only, while colour, texture and background are shared by the two views of one
image — without strong colour changes (channel permutation, jitter, grayscale) the easiest way to
match views would be colour, which says nothing about the class.

The other two pieces of the official BYOL / MoCo v3 / DINO pipeline are here too: Gaussian blur and
solarization, *asymmetric* between the first two views (view 1 always blurred; view 2 rarely
blurred, sometimes solarized; further views blurred half the time). Blur matters for the same
reason as colour: each object's dot/stripe texture and the pixel noise are shared by both views and
would identify the image without any shape. Crops are also rotated by a random angle, because the
generator rotates every object uniformly: rotation is a nuisance here, as colour is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from camscope.data.synthetic import SYNTHETIC_MEAN, SYNTHETIC_STD


@dataclass(frozen=True)
class CropSpec:
    """``count`` views of ``size``×``size`` pixels, each covering a ``scale`` fraction of the image area."""

    count: int
    size: int
    scale: tuple[float, float]


# (blur probability, solarize probability) of view 1, view 2, and every further view (BYOL's table).
VIEW_PHOTOMETRY: tuple[tuple[float, float], ...] = ((1.0, 0.0), (0.1, 0.2))
OTHER_VIEWS = (0.5, 0.0)
BLUR_SIGMA = (0.1, 1.0)  # pixels, on 64-px images (the official 0.1-2.0 is for 224 px)


def random_resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    """Per-image random crop (area fraction in ``scale``, aspect 3/4…4/3), rotation, flip, resize to ``size``."""
    n = x.shape[0]
    area = torch.empty(n).uniform_(*scale, generator=g)
    log_ratio = torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3), generator=g)
    ratio = log_ratio.exp()
    w = (area * ratio).sqrt().clamp(max=1.0)
    h = (area / ratio).sqrt().clamp(max=1.0)
    cx = (torch.rand(n, generator=g) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=g) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    angle = torch.rand(n, generator=g) * 2 * math.pi
    cos, sin = angle.cos(), angle.sin()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = w * flip * cos, -h * sin, cx
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = w * flip * sin, h * cos, cy
    grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def colour_jitter(x: torch.Tensor, g: torch.Generator, strength: float = 0.5, p_gray: float = 0.2) -> torch.Tensor:
    """Random channel order, brightness, contrast, saturation and grayscale, per image; x in [0, 1]."""
    n = x.shape[0]
    order = torch.argsort(torch.rand(n, 3, generator=g), dim=1)
    x = torch.gather(x, 1, order[:, :, None, None].expand_as(x))
    brightness = 1 + (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * strength
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * strength
    saturation = 1 + (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * strength
    x = x * brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * saturation + gray
    to_gray = torch.rand(n, 1, 1, 1, generator=g) < p_gray
    x = torch.where(to_gray, x.mean(dim=1, keepdim=True).expand_as(x), x)
    return x.clamp(0, 1)


def gaussian_blur(
    x: torch.Tensor, p: float, g: torch.Generator, sigma: tuple[float, float] = BLUR_SIGMA
) -> torch.Tensor:
    """Blur each image with probability ``p`` by a Gaussian of random width (separable, one grouped conv)."""
    n, c = x.shape[:2]
    s = torch.empty(n).uniform_(*sigma, generator=g)
    radius = math.ceil(3 * sigma[1])
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps[None] / s[:, None]) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)
    keep = torch.rand(n, generator=g) >= p  # identity kernel for the images left sharp
    kernel[keep] = (taps == 0).to(x.dtype)
    k = kernel.repeat_interleave(c, 0)  # (n·c, taps)
    flat = F.pad(x.reshape(1, n * c, *x.shape[2:]), (radius,) * 4, mode="reflect")
    flat = F.conv2d(flat, k[:, None, None, :], groups=n * c)
    flat = F.conv2d(flat, k[:, None, :, None], groups=n * c)
    return flat.reshape_as(x)


def solarize(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """Invert the pixels above 0.5, in each image with probability ``p``; x in [0, 1]."""
    chosen = (torch.rand(x.shape[0], generator=g) < p)[:, None, None, None]
    return torch.where(chosen & (x >= 0.5), 1 - x, x)


def views(images: torch.Tensor, crops: tuple[CropSpec, ...], g: torch.Generator) -> list[torch.Tensor]:
    """Augmented, normalised views of ``images`` in [0, 1]: one tensor per view.

    ``images`` is (N, 3, H, W), or (S, N, 3, H, W): S renderings of each scene (the generator-paired
    method's twins), view ``k`` then cut from rendering ``k mod S`` — with two, DINO's global views and
    MoCo's pair each come from a different rendering.
    """
    sources = images if images.dim() == 5 else images[None]
    mean = torch.tensor(SYNTHETIC_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(SYNTHETIC_STD).view(1, 3, 1, 1)
    out: list[torch.Tensor] = []
    for spec in crops:
        for _ in range(spec.count):
            blur, solar = VIEW_PHOTOMETRY[len(out)] if len(out) < len(VIEW_PHOTOMETRY) else OTHER_VIEWS
            source = sources[len(out) % len(sources)]
            view = colour_jitter(random_resized_crop(source, spec.size, spec.scale, g), g)
            view = solarize(gaussian_blur(view, blur, g), solar, g)
            out.append((view - mean) / std)
    return out
