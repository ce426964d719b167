"""``pytorch_grad_cam.score_cam`` → camscope: ScoreCAM."""

from camscope.methods.base import BaseCAM
from camscope.methods.scorecam import ScoreCAM

__all__ = ["BaseCAM", "ScoreCAM"]
