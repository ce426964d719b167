"""``camscope app`` on a local port, driven in headless Chromium (Playwright on Debian's ``chromium``).

Shared by the end-to-end test of the app and the script that takes the README's screenshot
(``benchmarks/app_screenshot.py``): both see the page through the same steps.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Route

# The folder that holds this camscope package: ``python -m camscope`` started there runs this same copy.
_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_app(*args: str, startup_s: float = 600) -> Iterator[str]:
    """``python -m camscope app`` on a free local port; yields its URL once it listens, stops it after."""
    port = free_port()
    cmd = [sys.executable, "-m", "camscope", "app", "--port", str(port), "--workers", "2", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + startup_s
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("camscope app: http://"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("camscope app did not start:\n" + "".join(lines))
        else:
            raise RuntimeError(f"camscope app exited with {proc.wait()}:\n" + "".join(lines))
        yield line.split()[2]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class BrowserRun:
    status: str = ""
    table: str = ""
    grid_width: int = 0
    heads_pictures: int = 0  # pictures in the per-head attention gallery
    upload_message: str = ""
    external: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


def drive(
    url: str,
    screenshot: Path | None = None,
    bad_file: Path | None = None,
    also: tuple[str, ...] = (),
    heads: bool = False,
    timeout_s: float = 600,
) -> BrowserRun:
    """Open the page, explain the preloaded generated scene with the default model and method (plus the
    models and methods named in ``also``; with ``heads``, the attention heads of the token models too), read
    the grid and the scores; optionally upload ``bad_file`` and read the message; optionally take a
    screenshot."""
    from playwright.sync_api import sync_playwright

    run = BrowserRun()
    ms = timeout_s * 1000
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: run.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: run.console_errors.append(f"page error: {e}"))

        def offline(route: Route) -> None:  # anything not served by the app itself would leave the machine
            if route.request.url.startswith(url) or route.request.url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                run.external.append(route.request.url)
                route.abort()

        page.route("**/*", offline)
        page.goto(url, wait_until="load", timeout=ms)
        for label in also:
            page.get_by_label(label, exact=True).check(timeout=ms)
        if heads:
            page.locator("#show_heads input").check(timeout=ms)
        page.locator("#explain").click(timeout=ms)
        page.wait_for_function("/(\\d+) \\/ \\1 done/.test(document.querySelector('#status').innerText)", timeout=ms)
        page.wait_for_function("document.querySelector('#grid img')?.naturalWidth > 0", timeout=ms)
        run.status = page.inner_text("#status")
        run.table = page.inner_text("#scores")
        run.grid_width = page.evaluate("document.querySelector('#grid img').naturalWidth")
        if heads:
            page.wait_for_function("document.querySelector('#heads img')?.naturalWidth > 0", timeout=ms)
            run.heads_pictures = page.evaluate("document.querySelectorAll('#heads img').length")
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        if bad_file is not None:
            page.set_input_files("#upload input[type=file]", str(bad_file))
            page.wait_for_function("document.querySelector('#status').innerText.includes('⚠️')", timeout=ms)
            run.upload_message = page.inner_text("#status")
        browser.close()
    return run
