"""The nine mini models as ordinary zoo entries, with weights shipped inside the package.

Each entry is a :class:`~camscope.models.spec.ModelSpec` like the seed's: the same family, the same
default target layer (so the zoo's per-family layer and reshape rules are exercised by trained
models), a packaged ``safetensors`` file that is always present, the generator's normalisation as
preprocessing, the shape names as classes, and supervised / self-supervised (DINO, MoCo v3).
"""

from __future__ import annotations

from camscope.data.synthetic import CLASS_NAMES, DEFAULT_SIZE
from camscope.mini.backbones import ARCHS
from camscope.mini.data import SYNTHETIC_MEAN, SYNTHETIC_STD
from camscope.mini.train import CONFIGS
from camscope.models.preprocess import Preprocess
from camscope.models.spec import ModelSpec, register_model, registered_spec
from camscope.models.weights import WeightsFile

PREPROCESS = Preprocess(
    resize=DEFAULT_SIZE, crop=(DEFAULT_SIZE, DEFAULT_SIZE), mean=SYNTHETIC_MEAN, std=SYNTHETIC_STD
)
_SSL_NAMES = {"dino": "DINO", "mocov3": "MoCo v3"}


def mini_specs() -> list[ModelSpec]:
    """One spec per mini model, in the order of :data:`camscope.mini.train.CONFIGS`."""
    specs = []
    for cfg in CONFIGS.values():
        arch = ARCHS[cfg.arch]
        specs.append(
            ModelSpec(
                name=cfg.name,
                family=arch.family,
                build=arch.build,
                preprocess=PREPROCESS,
                weights=(WeightsFile(f"{cfg.name}.safetensors", packaged=True),),
                target_layers=arch.target_layers,
                training="supervised" if cfg.ssl is None else "self-supervised",
                ssl_method=_SSL_NAMES.get(cfg.ssl or ""),
                num_classes=len(CLASS_NAMES),
                class_names=CLASS_NAMES,
                source="camscope mini zoo (camscope train-mini), trained on camscope.data.synthetic",
                notes=arch.description
                + ("" if cfg.ssl is None else "; linear classifier on the frozen self-supervised backbone"),
            )
        )
    return specs


def register_mini_models() -> tuple[str, ...]:
    """Register the mini zoo (idempotent: names already registered are left as they are)."""
    names = []
    for spec in mini_specs():
        if registered_spec(spec.name) is None:
            register_model(spec)
        names.append(spec.name)
    return tuple(names)


MINI_MODELS: tuple[str, ...] = register_mini_models()
