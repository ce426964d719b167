"""Large images: the model sees the full image, overlays are drawn within a bounded memory budget.

Why: overlays were drawn at the original resolution at ~80 bytes per pixel (an 8000×8000 PNG peaked at
5.4 GB), with nothing downscaled below Pillow's 179-Mpixel limit. Now the picture kept for overlays is
at most ``camscope.pipeline.MAX_OVERLAY_PIXELS`` (with a warning) and drawn in blocks.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import camscope
import camscope.api
import camscope.pipeline
from camscope.models import load_model
from tests.reliability.helpers import CNN, save_image, warning_lines


def test_a_picture_over_the_overlay_budget_is_downscaled_with_a_warning(tmp_path: Path, monkeypatch) -> None:
    path = save_image(tmp_path / "wide.png", (96, 80))
    net = load_model("mini_resnet")
    full = camscope.explain(net, path)
    monkeypatch.setattr(camscope.pipeline, "MAX_OVERLAY_PIXELS", 96 * 80 // 4)
    with pytest.warns(UserWarning, match=r"wide\.png is 96x80 px: its overlay is drawn at 48x40 px"):
        small = camscope.explain(net, path)
    assert isinstance(full, camscope.Explanation) and isinstance(small, camscope.Explanation)
    np.testing.assert_array_equal(small.map, full.map)  # the model's input is the full image's
    assert small.original is not None and small.original.shape == (40, 48, 3)
    assert small.overlay().shape == (40, 48, 3)


def test_cli_says_when_an_overlay_is_downscaled(run_cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(camscope.pipeline, "MAX_OVERLAY_PIXELS", 1000)
    path = save_image(tmp_path / "big.png", (96, 80))
    run = run_cli("explain", path, *CNN, "--out", tmp_path / "out")
    assert run.code == 0, run.err
    [line] = [w for w in warning_lines(run) if "big.png" in w]
    assert "overlay is drawn at" in line
    [png] = (tmp_path / "out").glob("big_*.png")
    assert Image.open(png).size[0] * Image.open(png).size[1] <= 1000


@pytest.mark.slow
def test_an_8000px_image_explains_and_saves_within_2_5_gb(tmp_path: Path) -> None:
    """Peak RSS of a fresh process (imports included) that explains an 8000×8000 PNG and saves its overlay."""
    side = 8000
    y, x = np.mgrid[0:side, 0:side].astype(np.uint16)
    picture = np.stack([(x // 32) % 256, (y // 32) % 256, ((x + y) // 64) % 256], axis=-1).astype(np.uint8)
    del x, y
    Image.fromarray(picture).save(tmp_path / "huge.png", compress_level=1)
    del picture
    script = textwrap.dedent(
        f"""
        import warnings
        import camscope
        from camscope.models import load_model
        warnings.simplefilter("ignore")
        result = camscope.explain(load_model("mini_resnet"), {str(tmp_path / "huge.png")!r})
        result.save({str(tmp_path / "overlay.png")!r})
        # VmHWM, not ru_maxrss: ru_maxrss keeps the forking parent's peak across exec (a big pytest process)
        print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    peak_gb = int(done.stdout.split()[-1]) * 1024 / 1e9  # VmHWM is in KiB
    assert peak_gb < 2.5, f"peak RSS {peak_gb:.2f} GB"
    with Image.open(tmp_path / "overlay.png") as saved:
        assert saved.size[0] * saved.size[1] <= camscope.pipeline.MAX_OVERLAY_PIXELS
