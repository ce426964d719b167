"""Training loss of recipe runs at fixed steps, read from their progress-bar logs (``mini_runs/TAG.log``).

    python -m camscope_lab.experiments.mini_loss_curve mini_runs/C17a.log mini_runs/C18a.log mini_runs/D17a.log

Why: runs of one recipe family are compared per step (benchmarks/results/mini_recipes.md) while they train;
the bar logs the loss every 20 steps, so each mark is the mean of the logged values in the 200 steps before it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

MARKS = (500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 10000, 12500, 15000, 20000, 25000, 30000)
_POINT = re.compile(r"\| (\d+)/\d+ \[([\d:]+)<[^,]*,[^,]*, loss=([\d.]+)")


def curve(text: str, window: int = 200) -> dict[int, tuple[float, str]]:
    """``{mark: (mean loss over the window before it, elapsed time)}`` for each mark the log reaches."""
    seen = {int(s): (float(loss), elapsed) for s, elapsed, loss in _POINT.findall(text)}
    out = {}
    for mark in MARKS:
        values = [seen[k][0] for k in seen if mark - window < k <= mark]
        if values:
            out[mark] = (sum(values) / len(values), seen[max(k for k in seen if k <= mark)][1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path, help="progress-bar logs, e.g. mini_runs/C18a.log")
    parser.add_argument("--window", type=int, default=200, help="steps averaged before each mark")
    args = parser.parse_args()
    for path in args.logs:
        if not path.is_file():
            parser.error(f"{path}: no such log")
        points = curve(path.read_text(errors="replace"), args.window)
        print(path, " ".join(f"{m}:{loss:.3f}({t})" for m, (loss, t) in points.items()))


if __name__ == "__main__":
    main()
