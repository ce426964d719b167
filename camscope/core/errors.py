"""User-facing errors.

Every problem a user can cause (bad file, bad name, bad shape, missing weights) raises a subclass of
:class:`CamscopeError` with a message that says what is wrong and what to do. The CLI prints these as one
line with no traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class CamscopeError(Exception):
    """Base class of every error caused by the user's input, not by a bug."""


class ImageLoadError(CamscopeError):
    """An image file is missing, unreadable, corrupt or not an image."""


class TargetError(CamscopeError):
    """Targets do not fit the batch or the model output (length mismatch, class out of range)."""


class LayerError(CamscopeError):
    """A target layer is not part of the model, or its output does not fit the reshape transform."""


class UnknownNameError(CamscopeError, KeyError):
    """A method, model or metric name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NameTakenError(CamscopeError, ValueError):
    """A method, model or metric registered under a name (or alias) that is already taken."""


class WeightsError(CamscopeError):
    """Weights file missing, or a checkpoint that does not fit its architecture."""


class MetricInputError(CamscopeError):
    """Maps, boxes, masks or metric parameters that do not fit the images."""


class InputError(CamscopeError):
    """An input tensor of the wrong shape, type or size."""


class OutputError(CamscopeError):
    """An output path that cannot be written (under a file, in a read-only folder, ...)."""


class CamscopeWarning(UserWarning):
    """A result that is usable but suspicious (NaN outputs, a constant map, a clipped image).

    Raised with :func:`warnings.warn`, so library users see it like any Python warning; the CLI prints
    it as one line, and the sweep stores it in the ``warnings`` column of the affected rows.
    ``images`` are the batch positions it concerns (None: all of them).
    """

    def __init__(self, text: str, images: list[int] | None = None) -> None:
        self.text = " ".join(text.split())  # one line, without the image positions
        self.images = images
        super().__init__(self.text if images is None else f"{self.text} (image(s) {', '.join(map(str, images))})")


def warn(text: str, images: list[int] | None = None, stacklevel: int = 2) -> None:
    """Emit a :class:`CamscopeWarning` (one line); ``images``: the batch positions it concerns."""
    import warnings

    warnings.warn(CamscopeWarning(text, images), stacklevel=stacklevel + 1)
