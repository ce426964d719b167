"""The nine mini architectures: the seed zoo's model classes at a size that trains on two CPU cores.

Why the same classes (torchvision ``ResNet``, timm ``VisionTransformer``, ``Cait``,
``SwinTransformer``, ``Xcit``) and not look-alikes: the mini models exist to exercise the zoo's
per-family target layers and reshape transforms with *trained* weights, so their module trees must
be the seed models' module trees. Only the sizes change. Every configuration gives an 8×8 CAM grid
at the default target layer on the generator's 64×64 images (patch 8, or a total CNN stride of 8,
or Swin's last stage at 8×8).

The self-supervised minis share the builders with the supervised ones: a DINO ResNet is a
``mini_resnet`` backbone whose ``fc`` was fitted by a linear probe, exactly as the seed's
``dino_resnet50`` is a torchvision ResNet50 with DINO's linear head.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from timm.layers import DropPath, Format, PatchEmbed  # type: ignore[attr-defined]  # re-exported without __all__
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from camscope.core.errors import InputError
from camscope.data.synthetic import CLASS_NAMES

NUM_CLASSES = len(CLASS_NAMES)
INPUT_SIZE = 64


class NarrowResNet(ResNet):  # type: ignore[misc]  # torchvision ships no type information
    """torchvision's ``ResNet`` with chosen stage widths and strides (the class hard-codes 64…512).

    Everything else — module names, blocks, ``avgpool`` + ``fc`` head, initialisation — is the
    parent's, so the zoo sees a ResNet (``layer4[-1]`` target layer, NCHW maps, no reshape).
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 96, 128),
        layers: tuple[int, ...] = (1, 1, 1, 1),
        strides: tuple[int, ...] = (1, 2, 1, 1),
        num_classes: int = NUM_CLASSES,
        stem: tuple[int, int] = (7, 2),
    ) -> None:
        self._plan = iter(zip(widths, strides, strict=True))
        self._stem: int | None = widths[0]
        self._stem_kernel, self._stem_stride = stem
        super().__init__(BasicBlock, list(layers), num_classes=num_classes)
        self.fc = nn.Linear(widths[-1] * BasicBlock.expansion, num_classes)
        del self._plan, self._stem, self._stem_kernel, self._stem_stride

    def _make_layer(
        self, block: type[BasicBlock], planes: int, blocks: int, stride: int = 1, dilate: bool = False
    ) -> nn.Sequential:
        if self._stem is not None:  # first stage: narrow the stem before the parent reads self.inplanes
            k, s = self._stem_kernel, self._stem_stride
            self.conv1 = nn.Conv2d(3, self._stem, kernel_size=k, stride=s, padding=k // 2, bias=False)
            self.bn1 = self._norm_layer(self._stem)
            self.inplanes, self._stem = self._stem, None
        width, stride = next(self._plan)
        layer: nn.Sequential = super()._make_layer(block, width, blocks, stride, dilate)
        return layer


class ConvStemPatchEmbed(PatchEmbed):
    """timm's ``PatchEmbed`` whose single ``patch × patch`` projection is a small convolutional stem.

    Why: trained from scratch on this data (class carried by shape alone, no colour or position
    shortcut), ViT and Swin with a linear patch projection sat at chance for ~1,000 steps of 64
    images (ViT at two learning rates, 2e-4 and 5e-4), while the same ViT with this stem left chance
    after 600 steps (``benchmarks/results/mini_recipes.md``). This is the ViT_C stem of Xiao et al., "Early
    convolutions help transformers see better" (NeurIPS 2021): ``log2(patch)`` 3×3 stride-2
    convolutions with BatchNorm and ReLU, then a 1×1 projection to the embedding width. XCiT's own
    ``ConvPatchEmbed`` is the same idea, which is why the XCiT mini learned without it.

    Only ``patch_embed.proj`` changes: the token grid, the blocks, the CAM target layers and the
    reshape transforms are the family's own, which is what the mini zoo exists to exercise.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        dim, channels, patch = self.proj.out_channels, self.proj.in_channels, self.patch_size[0]
        n = patch.bit_length() - 1
        assert 2**n == patch == self.patch_size[1], "the stem needs a square power-of-two patch"
        layers: list[nn.Module] = []
        for i in range(n):
            width = max(dim // 2 ** (n - i), 16)
            layers += [nn.Conv2d(channels, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.Conv2d(channels, dim, 1))
        self.proj = nn.Sequential(*layers)  # type: ignore[assignment]  # timm's PatchEmbed declares a Conv2d


@dataclass(frozen=True)
class MiniArch:
    """One mini architecture: its builder and the seed family it mirrors."""

    family: str
    target_layers: tuple[str, ...]
    build: Callable[[], nn.Module]
    description: str


@dataclass(frozen=True)
class TimmMini:
    """``timm.create_model(arch, pretrained=False, num_classes=10, img_size=64, **kwargs)``; picklable."""

    arch: str
    kwargs: tuple[tuple[str, Any], ...]

    def __call__(self) -> nn.Module:
        import timm

        return timm.create_model(
            self.arch, pretrained=False, num_classes=NUM_CLASSES, img_size=INPUT_SIZE, **dict(self.kwargs)
        )

    def __str__(self) -> str:
        return f"timm {self.arch} " + " ".join(f"{k}={getattr(v, '__name__', v)}" for k, v in self.kwargs)


@dataclass(frozen=True)
class ResNetMini:
    """:class:`NarrowResNet`: 3×3 stem, widths 16-32-64-128, one block per stage, total stride 8.

    A 3×3 stride-1 stem (as CIFAR ResNets) instead of ImageNet's 7×7 stride-2 one: on 64 px images
    the objects are 15-35 px across, and keeping resolution early learned faster per image.
    """

    def __call__(self) -> nn.Module:
        return NarrowResNet(widths=(16, 32, 64, 128), strides=(1, 2, 2, 1), stem=(3, 1))

    def __str__(self) -> str:
        return "torchvision ResNet(BasicBlock, [1,1,1,1]) widths 16-32-64-128, 3x3 stem, stride 8"


_VIT = (("patch_size", 8), ("embed_dim", 96), ("depth", 6), ("num_heads", 3), ("embed_layer", ConvStemPatchEmbed))
RESNET = MiniArch("ResNet", ("layer4[-1]",), ResNetMini(), "ResNet-10, widths 16-128, 3×3 stem")
VIT = MiniArch("DeiT", ("blocks[-1].norm1",), TimmMini("deit_tiny_patch16_224", _VIT), "ViT 6×96, patch 8, conv stem")
CAIT = MiniArch(
    "CaiT",
    ("blocks[-1].norm1",),
    TimmMini(
        "cait_xxs24_224",
        (
            ("patch_size", 8),
            ("embed_dim", 96),
            ("depth", 5),
            ("num_heads", 4),
            ("depth_token_only", 1),
            ("patch_layer", ConvStemPatchEmbed),
        ),
    ),
    "CaiT 5+1×96, patch 8, conv stem",
)
SWIN = MiniArch(
    "Swin",
    ("layers[-1].blocks[-1].norm1",),
    TimmMini(
        "swin_tiny_patch4_window7_224",
        (
            ("patch_size", 4),
            ("embed_dim", 48),
            ("depths", (2, 4)),
            ("num_heads", (3, 6)),
            ("window_size", 8),
            ("embed_layer", ConvStemPatchEmbed),
        ),
    ),
    "Swin 2 stages (2, 4)×48/96, patch 4, window 8, conv stem",
)
XCIT = MiniArch(
    "XCiT",
    ("blocks[-1]",),
    TimmMini(
        "xcit_nano_12_p8_224",
        (("embed_dim", 96), ("depth", 6), ("num_heads", 4), ("cls_attn_layers", 1)),
    ),
    "XCiT 6+1×96, patch 8",
)

ARCHS: dict[str, MiniArch] = {"resnet": RESNET, "vit": VIT, "cait": CAIT, "swin": SWIN, "xcit": XCIT}


def build(arch: str) -> nn.Module:
    """A freshly initialised mini architecture (``"resnet"``, ``"vit"``, ``"cait"``, ``"swin"``, ``"xcit"``)."""
    return ARCHS[arch].build()


def embed_dim(model: nn.Module) -> int:
    """Width of the representation the classifier head reads."""
    head = head_of(model)
    return head.in_features


def head_of(model: Any) -> nn.Linear:
    """The final linear classifier: ``fc`` (torchvision) or ``head`` / ``head.fc`` (timm)."""
    head = model.fc if isinstance(model, ResNet) else model.get_classifier()
    assert isinstance(head, nn.Linear), type(head)
    return head


def features(model: Any, x: torch.Tensor) -> torch.Tensor:
    """The pooled representation the head reads (ResNet: avg-pooled map; timm: ``pre_logits``)."""
    if isinstance(model, ResNet):
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
        return torch.flatten(model.avgpool(x), 1)
    pooled: torch.Tensor = model.forward_head(model.forward_features(x), pre_logits=True)
    return pooled


def resample_positions(model: Any, on: bool) -> None:
    """Let a timm ViT with a fixed position table take inputs of another size (``on``), or restore it.

    Why: the self-supervised ViT pre-trains on views smaller than the scenes (48 px, a 6×6 token grid;
    ``python -m camscope_lab.experiments.mini_step_time --pretrain-sizes 64 48`` times the saving), while it
    is evaluated, and its CAMs are taken, at 64 px on the table's own 8×8 grid. timm resamples the table to the
    input's grid when ``dynamic_img_size`` is set; at 64 px that is the table itself. Models without a fixed table
    (XCiT, ResNet) take any size already and are left alone.
    """
    if getattr(model, "pos_embed", None) is None or not hasattr(model, "dynamic_img_size"):
        return
    model.dynamic_img_size = on
    model.patch_embed.strict_img_size = not on
    model.patch_embed.flatten = not on
    model.patch_embed.output_fmt = Format.NHWC if on else Format.NCHW


# A layer-scale gain: CaiT's ``gamma_1``/``gamma_2``, XCiT's ``gamma1``…``gamma3``, timm ViT's ``ls1.gamma``.
_LAYER_SCALE = re.compile(r"(^|\.)(gamma_?\d|ls\d\.gamma)$")


def init_layer_scale(model: nn.Module, value: float) -> None:
    """Set every layer-scale gain of a freshly built model to ``value`` (a training recipe's initialisation).

    Why an option: timm's CaiT starts its gains at 1e-5, the CaiT paper's value for 24+ blocks (0.1 for 18 or
    fewer), and the six-block mini took it. Measured (``benchmarks/results/mini_recipes.md``): from scratch, 0.1
    learned no faster than 1e-5 (26.7 against 27.4 % after 1,200 steps); the other weights absorb the scale.
    """
    gains = [p for name, p in model.named_parameters() if _LAYER_SCALE.search(name)]
    if not gains:
        raise InputError(f"{type(model).__name__} has no layer-scale gains to initialise")
    with torch.no_grad():
        for gain in gains:
            gain.fill_(value)


def set_drop_path(model: nn.Module, rate: float) -> None:
    """Stochastic depth rising linearly from 0 to ``rate`` over the model's blocks (timm's rule).

    It replaces the blocks' ``drop_path*`` modules, so it also overrides a timm default: timm's Swin
    builds with 0.1. Training only: the weights and the evaluated model are unchanged.
    """
    blocks = [(m, slots) for m in model.modules() if (slots := _drop_slots(m))]
    if not blocks:
        raise InputError(f"{type(model).__name__} has no residual blocks with stochastic depth")
    for i, (block, slots) in enumerate(blocks):
        p = rate * i / max(len(blocks) - 1, 1)
        for name in slots:
            setattr(block, name, DropPath(p) if p > 0 else nn.Identity())


def _drop_slots(block: nn.Module) -> list[str]:
    """The names of a timm block's stochastic-depth modules (empty for anything else)."""
    names = ("drop_path", "drop_path1", "drop_path2", "drop_path3")
    return [n for n in names if isinstance(getattr(block, n, None), (DropPath, nn.Identity))]
