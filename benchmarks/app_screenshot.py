"""Start ``camscope app``, drive it in headless Chromium, and (as a script) write the README's screenshot.

    python benchmarks/app_screenshot.py            # → benchmarks/results/app.png

The same driver is the end-to-end test's (tests/app/test_browser.py): Playwright driving Debian's
``chromium`` (no browser download), every request that would leave the machine aborted and recorded.
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

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "benchmarks" / "results" / "app.png"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(*args: str, startup_s: float = 600) -> Iterator[str]:
    """``python -m camscope app`` on a free local port; yields its URL once it listens, stops it after."""
    port = free_port()
    cmd = [sys.executable, "-m", "camscope", "app", "--port", str(port), "--workers", "2", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
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

        def offline(route):  # anything not served by the app itself would leave the machine
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


def main() -> int:
    if CHROMIUM is None:
        print("needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    with running_app("--device", "cpu") as url:
        run = drive(url, screenshot=SCREENSHOT, also=("mini_deit", "mini_dino_resnet", "layercam"), heads=True)
    print(run.status)
    print(f"external requests: {run.external or 'none'}; console errors: {run.console_errors or 'none'}")
    print(f"{SCREENSHOT} ({time.perf_counter() - start:.0f} s)")
    return 0 if not run.external and not run.console_errors else 1


if __name__ == "__main__":
    sys.exit(main())
