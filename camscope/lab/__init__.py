"""The training lab: how the mini zoo is trained (``camscope train-mini``).

Kept apart from the library on purpose: ``import camscope`` (and ``camscope.models``) never imports
this package, so the DINO / MoCo v3 / augmentation code and timm's training paths stay off a user's
import path. The models themselves — architectures, specs, shipped weights — are ordinary zoo
entries in :mod:`camscope.models.mini`; this package only produces their weights and records.
"""
