"""Meta-methods: maps made by running another CAM method (the ``base_method``) in a particular way.

- :class:`FinerCAM` picks its targets from the output: the top class against the classes whose scores
  are closest to it (Finer-CAM, Zhang et al. 2025), as pytorch-grad-cam 1.5.7 does;
- :class:`RefineCAM` multiplies the maps of several layers, each computed alone, to denoise early layers;
- :class:`SESS` (Saliency Enhancing with Scaling and Sliding, Tyagi et al. 2022) fuses the maps of
  sliding windows over several scales of the image.

Each has pytorch-grad-cam's constructor and call shape; the base method is any camscope method class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from camscope.core.capture import ReshapeTransform, eval_mode, model_device
from camscope.core.errors import CamscopeError, TargetError
from camscope.core.targets import (
    ClassifierOutputTarget,
    FinerWeightedTarget,
    Target,
    TargetSpec,
    is_single_target,
    model_logits,
    repeated_target_scores,
)
from camscope.methods.base import BaseCAM, resize_maps, scale_per_image
from camscope.methods.gradient import GradCAM, GradCAMPlusPlus

Layers = Sequence[nn.Module | str] | nn.Module | str

#: Finer-CAM's comparison classes: ranks 1-3 of the classes sorted by closeness to the target's score.
DEFAULT_COMPARISON_CATEGORIES = (1, 2, 3)


class _MetaMethod:
    """A method over one ``base_method`` object, with the context-manager shape of a CAM object (nothing
    to release: hooks live inside each call). ``kwargs`` go to the base method."""

    def __init__(
        self,
        model: nn.Module,
        target_layers: Layers,
        reshape_transform: ReshapeTransform | None = None,
        base_method: type[BaseCAM] = GradCAM,
        **kwargs: Any,
    ) -> None:
        self.base_cam = base_method(model, target_layers, reshape_transform, **kwargs)
        self.model = model

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with eval_mode(model), torch.inference_mode():
        return model_logits(model(x.to(model_device(model))))


class FinerCAM(_MetaMethod):
    """Finer-CAM: the base method's map for :class:`~camscope.core.targets.FinerWeightedTarget` — the target class
    against the classes whose scores are nearest to it, so the map shows what tells similar classes apart.

    With ``targets=None`` each image's target is its top class (or ``target_idx``) compared with the classes
    at ranks ``comparison_categories`` of |y_j − y_target| (ranks past the number of classes are dropped).
    """

    def __call__(
        self,
        input_tensor: torch.Tensor,
        targets: TargetSpec = None,
        eigen_smooth: bool = False,
        alpha: float = 1,
        comparison_categories: Sequence[int] | None = None,
        target_idx: int | None = None,
    ) -> np.ndarray:
        if targets is None:
            targets = self.finer_targets(_logits(self.model, input_tensor), alpha, comparison_categories, target_idx)
        return self.base_cam(input_tensor, targets, eigen_smooth=eigen_smooth)

    forward = __call__

    @staticmethod
    def finer_targets(
        logits: torch.Tensor,
        alpha: float = 1,
        comparison_categories: Sequence[int] | None = None,
        target_idx: int | None = None,
    ) -> list[Target]:
        """One FinerWeightedTarget per image of ``logits`` (N, classes)."""
        num_classes = logits.shape[-1]
        if comparison_categories is None:
            ranks = list(DEFAULT_COMPARISON_CATEGORIES[: max(num_classes - 1, 0)])
        else:
            ranks = [int(c) for c in comparison_categories if c < num_classes]
        scores = logits.detach().float().cpu().numpy()
        reference = scores.max(axis=-1) if target_idx is None else scores[:, target_idx]
        order = np.argsort(np.abs(scores - reference[:, None]), axis=-1)
        return [FinerWeightedTarget(int(row[0]), [int(row[r]) for r in ranks], alpha) for row in order]


class RefineCAM(_MetaMethod):
    """The product of the base method's maps of each target layer (each computed alone), rescaled to [0, 1].

    ``kwargs`` go to the base method. pytorch-grad-cam's RefineCAM passes ``eigen_smooth`` where its base
    method reads ``aug_smooth``; here it is passed as ``eigen_smooth``. It also has no context-manager
    protocol there; it has one here.
    """

    def __init__(
        self,
        model: nn.Module,
        target_layers: Sequence[nn.Module | str],
        reshape_transform: ReshapeTransform | None = None,
        base_method: type[BaseCAM] = GradCAMPlusPlus,
        **kwargs: Any,
    ) -> None:
        self.base_cam_per_layer = [base_method(model, [layer], reshape_transform, **kwargs) for layer in target_layers]

    def __call__(
        self, input_tensor: torch.Tensor, targets: TargetSpec = None, eigen_smooth: bool = False
    ) -> np.ndarray:
        maps = [cam.compute(input_tensor, targets, eigen_smooth=eigen_smooth) for cam in self.base_cam_per_layer]
        product = torch.stack(maps).prod(dim=0)
        return scale_per_image(product).cpu().numpy()

    forward = __call__


class SESS(_MetaMethod):
    """SESS: the base method's maps of square windows slid over the image at several scales, each weighted
    by its window's (softmax) score and pasted back, fused by a spatial weighted mean (or max), then blurred.

    Parameters as pytorch-grad-cam's SESS (``scales`` default: ``num_scales`` sizes of the shorter side from
    the window size in steps of ``scale_step_ratio`` · window; ``window_size`` default: the shorter side).
    """

    def __init__(
        self,
        model: nn.Module,
        target_layers: Layers,
        reshape_transform: ReshapeTransform | None = None,
        base_method: type[BaseCAM] = GradCAM,
        scales: Sequence[int] | None = None,
        num_scales: int = 12,
        scale_step_ratio: float = 2.0 / 7.0,
        window_size: int | None = None,
        step_size: int | None = None,
        pre_filter_ratio: float = 0.0,
        theta: float = 0.0,
        pool: str = "mean",
        smooth: bool = True,
        use_softmax_scores: bool = True,
        batch_size: int = 32,
        **kwargs: Any,
    ) -> None:
        if pool not in ("mean", "max"):
            raise CamscopeError(f"SESS pool must be 'mean' or 'max', got {pool!r}")
        if not 0.0 <= pre_filter_ratio < 1.0:
            raise CamscopeError(f"SESS pre_filter_ratio must lie in [0, 1), got {pre_filter_ratio}")
        if num_scales < 1:
            raise CamscopeError(f"SESS num_scales must be at least 1, got {num_scales}")
        super().__init__(model, target_layers, reshape_transform, base_method, **kwargs)
        self.scales = None if scales is None else [int(s) for s in scales]
        self.num_scales = num_scales
        self.scale_step_ratio = scale_step_ratio
        self.window_size = window_size
        self.step_size = step_size
        self.pre_filter_ratio = pre_filter_ratio
        self.theta = theta
        self.pool = pool
        self.smooth = smooth
        self.use_softmax_scores = use_softmax_scores
        self.batch_size = batch_size

    def __call__(
        self, input_tensor: torch.Tensor, targets: TargetSpec = None, eigen_smooth: bool = False
    ) -> np.ndarray:
        x = input_tensor.detach().to(model_device(self.model))
        n = x.shape[0]
        if targets is None or is_single_target(targets):
            per_image: list[Any] = [targets] * n
        else:
            per_image = list(targets)  # type: ignore[arg-type]
            if len(per_image) != n:
                raise TargetError(f"got {len(per_image)} targets for a batch of {n} images: give one per image")
        maps = torch.stack([self._one_image(x[i : i + 1], t, eigen_smooth) for i, t in enumerate(per_image)])
        return scale_per_image(maps).cpu().numpy()

    forward = __call__

    def get_scales(self, window_size: int) -> list[int]:
        if self.scales is not None:
            return self.scales
        step = round(window_size * self.scale_step_ratio)
        return [window_size + step * i for i in range(self.num_scales)]

    def _one_image(self, x: torch.Tensor, target: Any, eigen_smooth: bool) -> torch.Tensor:
        from torchvision.transforms.functional import resize  # torchvision costs ~1 s at `import camscope`

        height, width = x.shape[-2:]
        window = self.window_size if self.window_size is not None else min(height, width)
        step = self.step_size if self.step_size is not None else window
        if target is None:
            target = ClassifierOutputTarget(int(_logits(self.model, x)[0].argmax()))
        elif not callable(target):
            target = ClassifierOutputTarget(target)
        patches, places = [], []
        for scale in self.get_scales(window):
            if scale < window:
                raise CamscopeError(f"every SESS scale must be at least the window size {window}, got {scale}")
            scaled = resize(x, [scale])
            sh, sw = scaled.shape[-2:]
            for top in window_starts(sh, step, window):
                for left in window_starts(sw, step, window):
                    patches.append(scaled[:, :, top : top + window, left : left + window])
                    places.append((left, top, sw, sh))
        scores = self._scores(torch.cat(patches), target)
        order = np.argsort(scores, kind="quicksort")[int(len(scores) * self.pre_filter_ratio) :]
        best = scores[order[-1]]
        weights = scores[order] / best if best > 0 else np.ones(len(order), np.float32)
        total = torch.zeros(height, width, device=x.device)
        counts = torch.zeros(height, width, device=x.device)
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            batch = torch.cat([patches[i] for i in chosen])
            cams = self.base_cam.compute(batch, [target] * len(chosen), eigen_smooth=eigen_smooth)
            for cam, weight, index in zip(cams, weights[start : start + self.batch_size], chosen):
                left, top, sw, sh = places[index]
                full = torch.zeros(sh, sw, device=x.device)
                full[top : top + cam.shape[0], left : left + cam.shape[1]] = cam * float(weight)
                pasted = resize_maps(full[None], (height, width))[0]
                if self.pool == "max":
                    total = torch.maximum(total, pasted)
                else:
                    keep = pasted > self.theta
                    total = total + torch.where(keep, pasted, 0.0)
                    counts = counts + keep
        fused = total if self.pool == "max" else torch.where(counts > 0, total / counts.clamp(min=1), 0.0)
        return gaussian_blur_reflect(fused) if self.smooth else fused

    def _scores(self, patches: torch.Tensor, target: Target) -> np.ndarray:
        scores = []
        with eval_mode(self.model), torch.inference_mode():
            for batch in torch.split(patches, self.batch_size):
                outputs = model_logits(self.model(batch))
                if self.use_softmax_scores:
                    outputs = torch.softmax(outputs, dim=-1)
                scores.append(repeated_target_scores(target, outputs).float().cpu().numpy())
        weights: np.ndarray = np.maximum(np.concatenate(scores), 0).astype(np.float32)
        return weights


def window_starts(length: int, step_size: int, window_size: int) -> list[int]:
    """Top-left offsets of windows covering ``length``; the last window is shifted back inside."""
    starts = []
    for start in range(0, length, step_size):
        if start + window_size >= length:
            starts.append(max(length - window_size, 0))
            break
        starts.append(start)
    return starts


def sliding_window(height: int, width: int, step_size: int, window_size: int) -> list[tuple[int, int]]:
    """(x, y) top-left corners of the windows covering an image, row by row."""
    return [
        (x, y)
        for y in window_starts(height, step_size, window_size)
        for x in window_starts(width, step_size, window_size)
    ]


def gaussian_blur_reflect(image: torch.Tensor, size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Separable Gaussian blur of an (H, W) map with mirrored borders (OpenCV's default, BORDER_REFLECT_101)."""
    half = size // 2
    offsets = torch.arange(size, dtype=torch.float64, device=image.device) - half
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(image.dtype)
    padded = F.pad(image[None, None], (half, half, half, half), mode="reflect")
    blurred = F.conv2d(padded, kernel.view(1, 1, 1, size))
    return F.conv2d(blurred, kernel.view(1, 1, size, 1))[0, 0]
