"""Fixtures of the migration suite."""

from __future__ import annotations

import importlib
import pkgutil

import matplotlib
import pytest


@pytest.fixture
def sign_corrected_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytorch-grad-cam with its principal-component projection sign-corrected, as camscope's always is.

    The sign of an SVD's singular vector is arbitrary, so the peer's Eigen maps can come out inverted; camscope
    orients them (largest absolute value positive: the peer's own ``get_2d_projection_with_sign_correction``).
    With the peer patched the same way, the maps must agree.
    """
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction

    names = [pytorch_grad_cam.__name__]
    names += [m.name for m in pkgutil.walk_packages(pytorch_grad_cam.__path__, "pytorch_grad_cam.")]
    for name in names:
        module = importlib.import_module(name)
        if hasattr(module, "get_2d_projection"):
            monkeypatch.setattr(module, "get_2d_projection", get_2d_projection_with_sign_correction)


@pytest.fixture
def peer_colormap_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """The peer draws with ``matplotlib.cm.get_cmap``, removed in matplotlib 3.9: put it back for its run."""
    monkeypatch.setattr(matplotlib.cm, "get_cmap", lambda name: matplotlib.colormaps[name], raising=False)
