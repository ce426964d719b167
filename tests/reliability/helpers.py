"""Helpers of the bad-input suite: every input file is generated here, nothing comes from elsewhere.

``run_cli`` runs the command line in-process (fast: no interpreter start) and returns exit status,
stdout and stderr; ``assert_one_line_error`` is the contract of every user error: exit 2, exactly one
line on stderr starting ``camscope``, no traceback anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# The tiny models of the suite: untrained minis (64x64 inputs), so every output says RANDOM WEIGHTS.
CNN = ["--model", "mini_resnet", "--random-weights"]
VIT = ["--model", "mini_deit", "--random-weights"]


@dataclass
class Run:
    code: int
    out: str
    err: str


def assert_one_line_error(run: Run, *needles: str) -> str:
    """Exit 2, one line on stderr, no traceback; the line contains every needle (case-insensitive)."""
    lines = run.err.strip().splitlines()
    assert run.code == 2, (run.code, run.out, run.err)
    assert len(lines) == 1, run.err
    assert "Traceback" not in run.err + run.out and "np.float64" not in run.err
    assert lines[0].startswith("camscope"), lines[0]
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


def warning_lines(run: Run) -> list[str]:
    return [line for line in run.err.splitlines() if line.startswith("camscope: warning:")]


def save_image(path: Path, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    """A small RGB picture (width, height) with some structure."""
    rng = np.random.default_rng(seed)
    picture = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    picture[size[1] // 4 : size[1] // 2, size[0] // 4 : size[0] // 2] = (250, 30, 30)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(path)
    return path


def voc_xml(width: object, height: object, boxes: list[tuple[object, ...]], name: str = "cat") -> str:
    objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for b in boxes
    )
    return (
        f"<annotation><size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
        f"{objects}</annotation>"
    )
