"""A classifier without its head: the pooled embedding that label-free explanations explain.

Self-supervised backbones are published without a classifier (their heads are linear probes trained
afterwards), and any classifier's penultimate representation is an embedding too. ``strip_classifier``
replaces the final classifier by the identity, so the model outputs what the head used to read:
timm models through their own ``reset_classifier(0)`` (pooled features; distilled DeiT: the mean of
the class and distillation tokens), torchvision models by replacing ``fc`` / ``classifier`` / ``heads``.
"""

from __future__ import annotations

from torch import nn

from camscope.core.errors import WeightsError


def mark_model(model: nn.Module, **attributes: object) -> None:
    """Set camscope's plain attributes on a model (``camscope_spec``, ``camscope_backbone``...): what every
    entry point reads to know which zoo model, which weights and which head it has."""
    for name, value in attributes.items():
        setattr(model, name, value)


_TORCHVISION_HEADS = ("fc", "classifier", "heads", "head")


def strip_classifier(model: nn.Module) -> set[str]:
    """Remove ``model``'s classifier in place; returns the state-dict keys that went with it."""
    before = set(model.state_dict())
    reset = getattr(model, "reset_classifier", None)
    if callable(reset):
        reset(0)
    else:
        for name in _TORCHVISION_HEADS:
            if isinstance(getattr(model, name, None), nn.Module):
                setattr(model, name, nn.Identity())
                break
        else:
            raise WeightsError(
                f"cannot find the classifier of {type(model).__name__} (no reset_classifier, fc, classifier or "
                "heads): load it with its head and take the embedding yourself"
            )
    mark_model(model, camscope_backbone=True)
    return before - set(model.state_dict())
