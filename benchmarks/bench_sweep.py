"""Sweep throughput: the local engine vs a plain image-by-image loop, and the Ray engine's overhead.

    python -m benchmarks.bench_sweep [--images 16] [--steps 32] [--model resnet50] [--no-ray] [--write-readme]

The work: ResNet50 (random weights: no download needed, same cost as trained ones) + Grad-CAM +
deletion + insertion on generated 224×224 images, each curve with ``--steps`` steps. Three ways:

* ``plain loop`` — what a hand-written script does: image by image, one CAM call and one forward pass
  per deletion/insertion step (batch size 1), with the model loaded once.
* ``local engine`` — ``camscope sweep`` in-process: batched CAMs and batched metric passes.
* ``ray engine`` — the same sweep through a local Ray instance (all CPUs, one actor for the model);
  its cluster start is timed apart, since a real cluster is started once for many sweeps.

Targets: local ≥ 2× the plain loop (from batching), Ray ≤ 1.2× the local engine's time.
Wall and CPU seconds are printed (on a shared machine the CPU figure says what the code costs), with
the peak RSS of this process (and of Ray's worker processes), and the load average after each variant.
``--write-readme`` writes the table into README.md between the ``bench:sweep`` markers.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.readme_tables import invocation, write_readme_table
from camscope.sweep import SweepConfig


def _config(out: Path, args: argparse.Namespace) -> SweepConfig:
    from camscope.sweep import parse_config

    step = 224 * 224 // args.steps
    return parse_config(
        {
            "output": str(out),
            "device": "cpu",
            "models": [{"name": args.model, "random_weights": True}],
            "methods": ["gradcam"],
            "batch_size": args.batch_size,
            "metric_batch_size": args.metric_batch_size,
            "shard_size": args.shard_size,
            "report_images": 0,
            "images": {"source": f"synthetic:{args.images}", "seed": 0, "size": 224},
            "metrics": {"deletion": {"step": step}, "insertion": {"step": step}},
        }
    )


def plain_loop(config: SweepConfig) -> tuple[float, float]:
    """Image by image, batch size 1 everywhere; returns (wall, cpu) seconds."""
    from camscope.methods import get_method
    from camscope.metrics import deletion, insertion
    from camscope.sweep.image_source import ImageReader
    from camscope.sweep.worker import load_prepared

    pm = load_prepared(config.models[0], torch.device("cpu"))
    reader = ImageReader(config.images)
    step = config.metrics["deletion"]["step"]
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(config.images.synthetic):
        x = pm.spec.preprocess(reader.read(index).picture)[None]
        with torch.inference_mode():
            target = int(pm.model(x).argmax())
        cam = get_method("gradcam")(pm.model, pm.layers, pm.reshape)(x, [target])
        deletion(pm.model, x, cam, [target], step=step, batch_size=1)
        insertion(pm.model, x, cam, [target], step=step, batch_size=1)
    return time.perf_counter() - wall, time.process_time() - cpu


def engine_run(config: SweepConfig, engine: str, **options: object) -> tuple[float, float]:
    from camscope.sweep import run_sweep

    shutil.rmtree(config.output, ignore_errors=True)
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_sweep(config, engine=engine, progress=False, out=io.StringIO(), **options)
    assert not result.failures, result.failures[:3]
    return time.perf_counter() - wall, time.process_time() - cpu


def _peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=32, help="deletion/insertion steps per curve")
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--metric-batch-size", type=int, default=33)
    parser.add_argument("--shard-size", type=int, default=8)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--write-readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    config = _config(folder / "results", args)
    n = args.images
    command = invocation("benchmarks.bench_sweep")
    caption = (
        f"`{command}`: {args.model} (random weights) + Grad-CAM + deletion/insertion ({args.steps} steps), "
        f"{n} generated images 224×224, {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs; one run "
        "of each variant; load = load average after the variant"
    )
    print(caption, flush=True)
    header = [
        "| variant | wall s | CPU s | images/s | vs plain loop | vs local engine | load |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows: list[tuple[str, float]] = []
    lines: list[str] = []

    def report(name: str, wall: float, cpu: float | None) -> None:
        rows.append((name, wall))
        base, local = rows[0][1], rows[min(1, len(rows) - 1)][1]
        cpu_text = f"{cpu:.1f}" if cpu is not None else "(actor)"
        vs_local = f"{wall / local:.2f}×" if len(rows) > 1 else ""
        lines.append(
            f"| {name} | {wall:.1f} | {cpu_text} | {n / wall:.2f} | {base / wall:.2f}× | {vs_local} | "
            f"{os.getloadavg()[0]:.1f} |"
        )
        print(lines[-1], flush=True)

    engine_run(_config(folder / "warm", argparse.Namespace(**{**vars(args), "images": 1})), "local")  # warm-up
    print("\n".join(header), flush=True)
    report("plain loop (batch 1)", *plain_loop(config))
    report("local engine", *engine_run(config, "local"))
    notes = []
    if not args.no_ray:
        import ray

        t = time.perf_counter()
        ray.init(
            address="local",  # a private instance: never a cluster that happens to run on the machine
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
        )
        ray_start = time.perf_counter() - t
        report("ray engine", engine_run(config, "ray")[0], None)
        ray.shutdown()
        notes.append(f"ray cluster start (once per session, not counted above): {ray_start:.1f} s")
    else:
        notes.append("Ray engine not run (--no-ray)")
    notes.append(
        f"peak RSS: this process {_peak_mib(resource.RUSAGE_SELF):.0f} MiB, "
        f"largest child (Ray workers) {_peak_mib(resource.RUSAGE_CHILDREN):.0f} MiB; "
        "targets: local >= 2x plain loop, ray <= 1.2x local"
    )
    print("\n".join(notes))
    shutil.rmtree(folder, ignore_errors=True)
    if args.write_readme:
        write_readme_table("sweep", "\n".join([caption, "", *header, *lines, "", "; ".join(notes)]))


if __name__ == "__main__":
    main()
