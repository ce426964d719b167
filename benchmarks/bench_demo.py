"""The demo preset's sweep (nine trained minis × four methods × generated scenes): image-tasks per second.

    python -m benchmarks.bench_demo [--images 12,48] [--repeats 3] [--write-readme]

Two variants, interleaved in one process, medians:

* ``this version`` — the sweep as ``camscope demo`` runs it: one shared forward+backward per shard
  for the methods that read the same layer, and whole-image forwards (clean images, substrates) run
  once per shard through the metrics' forward memo;
* ``without the forward memo`` — the same sweep with every metric running its own clean and
  substrate forwards, as before the memo existed (the memo is switched off in this process only).

The issue's reference is 16.0 image-tasks/s, measured on this machine when issue 15 was filed
(goal ≥ 2×). An image-task is one image × one method × one model, with every configured metric.
Only the sweep is timed (no report). Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from benchmarks.readme_tables import invocation, publish

ISSUE_REFERENCE = 16.0  # image-tasks/s of the demo sweep when issue 15 was filed


@contextlib.contextmanager
def memo_off() -> Iterator[None]:
    """Every whole-image forward runs afresh: the memo stores nothing (the behaviour before it)."""
    from camscope.metrics._common import ForwardMemo, forward_logits

    saved = ForwardMemo.logits, ForwardMemo.remember
    ForwardMemo.logits = lambda self, images, batch_size: forward_logits(self.model, images, batch_size)  # type: ignore[method-assign]
    ForwardMemo.remember = lambda self, images, logits: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        ForwardMemo.logits, ForwardMemo.remember = saved  # type: ignore[method-assign]


def sweep_seconds(folder: Path, images: int) -> tuple[float, int]:
    """Wall seconds of the demo sweep on ``images`` scenes, and its image-task count."""
    from camscope.sweep import parse_config, run_sweep
    from camscope.sweep.presets import available_mini_models, demo_config_dict

    models, missing = available_mini_models()
    if missing:
        raise SystemExit(f"mini models missing: {', '.join(missing)}")
    shutil.rmtree(folder, ignore_errors=True)
    raw = demo_config_dict(folder, models)
    raw["images"]["source"] = f"synthetic:{images}"
    config = parse_config(raw, source="bench_demo")
    start = time.perf_counter()
    result = run_sweep(config, progress=False, out=io.StringIO())
    seconds = time.perf_counter() - start
    assert not result.failures, result.failures[:3]
    return seconds, images * len(models) * len(config.methods)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="12,48", help="comma-separated scene counts (the issue's: 12 and 48)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench_demo_"))
    variants = {"this version": contextlib.nullcontext, "without the forward memo": memo_off}
    loads: list[float] = []
    rows: list[str] = []
    sweep_seconds(folder / "warm", 1)  # imports, first model loads
    for images in [int(v) for v in args.images.split(",")]:
        times: dict[str, list[float]] = {name: [] for name in variants}
        tasks = 0
        for _ in range(args.repeats):
            for name, context in variants.items():
                with context():
                    seconds, tasks = sweep_seconds(folder / "run", images)
                times[name].append(seconds)
                loads.append(os.getloadavg()[0])
        med = {name: statistics.median(v) for name, v in times.items()}
        for name, s in med.items():
            rows.append(
                f"| {images} | {name} | {tasks} | {s:.1f} | {tasks / s:.1f} | "
                f"{med['without the forward memo'] / s:.2f}× | {tasks / s / ISSUE_REFERENCE:.2f}× |"
            )
            print(rows[-1], flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    command = invocation("benchmarks.bench_demo")
    lines = [
        f"`{command}`: the demo preset's sweep (9 minis × 4 methods × generated scenes; an image-task is one "
        f"scene × method × model with every metric), {torch.get_num_threads()} torch threads, medians of "
        f"{args.repeats} interleaved runs, load average {statistics.median(loads):.1f} "
        f"(min {min(loads):.1f}, max {max(loads):.1f})",
        "",
        "| scenes | variant | image-tasks | sweep s | image-tasks/s | vs without the memo | vs the issue's 16.0 |",
        "|---:|---|---:|---:|---:|---:|---:|",
        *rows,
    ]
    publish("demo", "\n".join(lines), args.write_readme)


if __name__ == "__main__":
    main()
