"""The app under hostile or long use: a URL given as an uploaded file is refused, never fetched; temporary
files stay in the app's own folders and do not pile up; the result cache is bounded by bytes."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="needs the app extra: pip install -e '.[app]' (the test extra has it)")

from camscope.app.session import Explorer, footprint


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, list[str]]]:
    """The page on a free local port, with Gradio's URL download replaced by a recorder."""
    from gradio import processing_utils

    from camscope.app import ui

    fetched: list[str] = []

    async def record(url: str, cache_dir: str) -> str:
        fetched.append(url)
        raise RuntimeError("the test forbids downloads")

    real = processing_utils.async_ssrf_protected_download
    processing_utils.async_ssrf_protected_download = record
    app = ui.build_app(Explorer(device="cpu"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ui._launch(app, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}", fetched
    finally:
        app.close()
        processing_utils.async_ssrf_protected_download = real


def _call(base: str, api: str, data: list[object]) -> str:
    request = urllib.request.Request(
        f"{base}/gradio_api/call/{api}",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    event = json.loads(urllib.request.urlopen(request, timeout=60).read())["event_id"]
    return urllib.request.urlopen(f"{base}/gradio_api/call/{api}/{event}", timeout=60).read().decode()


@pytest.mark.parametrize("api", ["upload", "upload_reference"])
def test_a_url_as_an_uploaded_file_is_refused_not_fetched(served, api: str) -> None:
    base, fetched = served
    answer = _call(base, api, [{"path": "https://example.com/cat.png", "meta": {"_type": "gradio.FileData"}}])
    assert "event: error" in answer and "not URLs" in answer, answer
    assert fetched == []


def test_gradio_files_live_in_a_folder_of_the_apps_own() -> None:
    from camscope.app import ui

    folder = Path(os.environ["GRADIO_TEMP_DIR"])
    if hasattr(ui, "_GRADIO_FILES"):  # not set by the user: ours, removed at exit
        assert folder.name.startswith("camscope_app_gradio_") and folder.is_dir()
    assert ui.DELETE_CACHE[1] <= 3600


def test_downloads_keep_the_last_runs_only_and_vanish_on_close() -> None:
    from camscope.app.ui import Downloads

    downloads = Downloads(keep=3)
    folders = [downloads.folder() for _ in range(10)]
    assert sorted(downloads.root.iterdir()) == sorted(folders[-3:])
    downloads.close()
    assert not downloads.root.exists()


@pytest.mark.slow
def test_the_result_cache_is_bounded_by_bytes() -> None:
    """256 cells of uploaded images held ~1 GB: the cache now also stops at ``cache_bytes``."""
    explorer = Explorer(device="cpu", curve_steps=2)
    first = explorer.cell("mini_resnet", "gradcam", explorer.scene(0))
    explorer.cache_bytes = int(1.5 * footprint(first))  # room for one cell
    second = explorer.cell("mini_resnet", "gradcam", explorer.scene(1))
    assert first.error is None and second.error is None
    assert len(explorer._cache) == 1 and explorer.cached_bytes <= explorer.cache_bytes
    assert explorer.cell("mini_resnet", "gradcam", explorer.scene(1)) is second  # the newest stays cached
    assert explorer.cell("mini_resnet", "gradcam", explorer.scene(0)) is not first  # the oldest went
