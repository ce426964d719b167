"""Start ``camscope app``, drive it in headless Chromium, and (as a script) write the README's screenshot.

    python benchmarks/app_screenshot.py            # → benchmarks/results/app.png

The driver (:mod:`camscope.testing.browser`) is the end-to-end test's too (tests/app/test_browser.py):
Playwright driving Debian's ``chromium`` (no browser download), every request that would leave the machine
aborted and recorded.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from camscope.testing.browser import CHROMIUM, drive, running_app

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "benchmarks" / "results" / "app.png"


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
