"""End to end: ``python -m camscope app`` on a free local port, driven in headless Chromium (Playwright on
Debian's ``chromium``): one explanation on a CNN and a ViT mini model, the overlays, the scores and the ViT's
attention heads on the page, a bad upload answered with a message, no console error, no request leaving the
machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from camscope.testing.browser import CHROMIUM, drive, running_app

pytest.importorskip("gradio", reason="needs the app extra: pip install -e '.[app]' (the test extra has it)")
pytest.importorskip("playwright", reason="needs playwright (the test extra has it)")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_explain_in_the_browser(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not an image")
    with running_app("--device", "cpu") as url:
        assert url.startswith("http://127.0.0.1:")
        run = drive(url, screenshot=tmp_path / "app.png", bad_file=bad, also=("mini_deit",), heads=True)
    assert "2 / 2 done (mini_deit × gradcam" in run.status, run.status
    assert "mini_resnet, attention heads: no class-token attention" in run.status  # a CNN: a note, no picture
    assert run.heads_pictures == 1  # mini_deit's heads
    assert run.grid_width > 100  # the overlay grid was drawn and loaded
    for column in ("deletion_auc", "insertion_auc", "pointing", "energy_pointing"):
        assert column in run.table, run.table
    assert "mini_resnet" in run.table and "gradcam" in run.table
    assert "notes.txt" in run.upload_message and "Traceback" not in run.upload_message, run.upload_message
    assert not run.external, run.external
    assert not run.console_errors, run.console_errors
    assert (tmp_path / "app.png").stat().st_size > 20_000
