"""Accuracy and localization of the shipped mini zoo, measured against the generator's ground truth.

Why here and not only in the tests: the same figures go into ``benchmarks/results/mini_zoo*.md``
and the README, so one function computes them for both (``python benchmarks/mini_zoo_report.py``).

Localization is the pointing game (:func:`camscope.metrics.localization.pointing_game`): an image is
a hit when the maximum of the map, explaining the true class at the zoo's default target layer,
lies within ``TOLERANCE`` pixels of the object's mask — the object covers 6-26 % of the image, so a
map that ignores the object hits about as often as a random point (RandomCAM measures that floor).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from camscope.data.synthetic import SyntheticBatch, generate, to_input
from camscope.lab.data import TEST_SEED
from camscope.metrics.localization import pointing_game
from camscope.models.mini import MINI_MODELS, mini_record
from camscope.models.weights import PACKAGED_DIR as WEIGHTS_DIR
from camscope.targets import ClassifierOutputTarget

GRADIENT_METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigengradcam")
LOCALIZATION_SEED = 11  # fresh images, disjoint from the training, probe and test seeds
LOCALIZATION_N = 300
TOLERANCE = 3  # pixels, on the 64×64 input (a CAM cell is 8 px wide)
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def load_mini(name: str) -> nn.Module:
    """A shipped mini model from the zoo, in eval mode, with its packaged weights."""
    from camscope.models import load_model

    return load_model(name)


def cam_maps(
    model: nn.Module, method: str, images: np.ndarray, labels: np.ndarray, batch_size: int = 100
) -> np.ndarray:
    """Maps (N, H, W) of ``method`` explaining each image's true class at the spec's default layer."""
    from camscope.methods import get_method
    from camscope.models import get_spec

    spec = getattr(model, "camscope_spec", None) or get_spec(model)
    layers, reshape = spec.cam_layers(model)
    cam = get_method(method)(model, target_layers=layers, reshape_transform=reshape)
    x = to_input(images, spec.mean, spec.std)
    out = []
    for start in range(0, len(x), batch_size):
        targets = [ClassifierOutputTarget(int(c)) for c in labels[start : start + batch_size]]
        out.append(cam(x[start : start + batch_size], targets=targets))
    return np.concatenate(out)


def pointing_accuracy(model: nn.Module, method: str, data: SyntheticBatch, tolerance: float = TOLERANCE) -> float:
    """Pointing-game hit rate (%) of ``method`` against the true masks of ``data``."""
    maps = cam_maps(model, method, data.images, data.labels)
    return pointing_game(maps, data.masks, tolerance=tolerance).mean * 100


def localization_table(
    names: tuple[str, ...] = MINI_MODELS,
    methods: tuple[str, ...] = (*GRADIENT_METHODS, "randomcam"),
    n: int = LOCALIZATION_N,
    seed: int = LOCALIZATION_SEED,
) -> dict[str, dict[str, float]]:
    """``{model: {method: pointing-game %}}`` on ``generate(n, seed)``."""
    data = generate(n, seed)
    table: dict[str, dict[str, float]] = {}
    for name in names:
        model = load_mini(name)
        table[name] = {method: pointing_accuracy(model, method, data) for method in methods}
    return table


def localization_markdown(table: dict[str, dict[str, float]], n: int = LOCALIZATION_N, seconds: float = 0.0) -> str:
    methods = list(next(iter(table.values())))
    lines = [
        "# Mini zoo: pointing game against the true object masks",
        "",
        f"Pointing game (%) on {n} fresh generated images (`generate({n}, seed={LOCALIZATION_SEED})`, 64×64); "
        "the map explains the "
        f"true class at the zoo's default target layer; hit = the map's maximum within {TOLERANCE} px of the "
        "object mask. `randomcam` (random channel weights) is the floor.",
        "",
        "| model | training | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for name, row in table.items():
        rec = mini_record(name)
        label = rec["training"] if not rec.get("ssl_method") else f"self-supervised ({rec['ssl_method']})"
        lines.append(f"| {name} | {label} | " + " | ".join(f"{row[m]:.1f}" for m in methods) + " |")
    lines += [
        "",
        f"Reproduce: `python benchmarks/mini_zoo_report.py` (writes `mini_zoo.md`, {n} images)."
        + (f" Computed in {seconds:.0f} s on a shared 2-core CPU." if seconds else ""),
        "",
    ]
    return "\n".join(lines)


def accuracy_markdown(table: dict[str, dict[str, float]] | None = None) -> str:
    """Accuracy (and Grad-CAM localization, if ``table`` is given) per model, from the records."""
    lines = [
        "# Mini zoo: accuracy and localization",
        "",
        "Nine small models mirroring the seed zoo (same timm / torchvision classes; the ViT, CaiT and Swin "
        "minis with a convolutional patch stem, see `camscope.models.mini_archs`), trained on CPU on "
        "generated shapes (`camscope.data.synthetic`, 10 classes, chance = 10 %). Test set: "
        f"`generate(1000, seed={TEST_SEED})`; *object removed* = the same scenes with the object erased "
        "(counterfactuals): near 10 % means the model uses the object. Self-supervised models: test "
        "accuracy of a linear classifier on the frozen backbone (linear probe).",
        "",
        "| model | family | training | params | test acc % | object removed % | train steps | train time |"
        + (" Grad-CAM pointing % |" if table else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if table else ""),
    ]
    for name in MINI_MODELS:
        path = WEIGHTS_DIR / f"{name}.json"
        if not path.is_file():
            lines.append(f"| {name} | | not trained | | | | | |")
            continue
        rec = mini_record(name)
        label = rec["training"] if not rec.get("ssl_method") else f"self-sup. ({rec['ssl_method']})"
        row = (
            f"| {name} | {rec['family']} | {label} | {rec['parameters'] / 1e3:.0f}k | {rec['test_accuracy']:.1f} | "
            f"{rec['counterfactual_accuracy']:.1f} | {rec['steps']} × {rec['config']['batch_size']} | "
            f"{rec['train_seconds'] / 60:.1f} min |"
        )
        if table:
            row += f" {table[name]['gradcam']:.1f} |" if name in table else " |"
        lines.append(row)
    lines += ["", *_target_notes()]
    size = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.safetensors"))
    lines += [
        "",
        f"Weights: `camscope/zoo_weights/*.safetensors`, float16, {size / 1e6:.1f} MB in all.",
        "",
        "Reproduce:",
        "",
        "```bash",
        "camscope train-mini --model all            # or --model NAME; --steps N --seed S replays a record",
        "pytest tests/mini                          # re-checks every shipped model against its record",
        "python benchmarks/mini_zoo_report.py             # rewrites this file (localization on 300 images)",
        "```",
        "",
    ]
    return "\n".join(lines)


def _target_notes() -> list[str]:
    """Which models meet the mini-zoo targets (supervised ≥ 95 %, linear probe ≥ 80 %), from the records."""
    met, missed = [], []
    for name in MINI_MODELS:
        path = WEIGHTS_DIR / f"{name}.json"
        if not path.is_file():
            continue
        rec = mini_record(name)
        target = 95.0 if rec["training"] == "supervised" else 80.0
        (met if rec["test_accuracy"] >= target else missed).append(f"{name} ({rec['test_accuracy']:.1f} %)")
    notes = [f"Targets (supervised ≥ 95 %, linear probe ≥ 80 %) met by: {', '.join(met) or 'none'}."]
    if missed:
        notes.append(
            f"Not met: {', '.join(missed)} — the best reached within a budget of about 20 minutes per model "
            "on one CPU core; a model near 10 % learned nothing, and its maps are no evidence about a method."
        )
    return notes


def main() -> int:
    """Write ``benchmarks/results/mini_zoo.md``: accuracy table, then the full localization table."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    names = tuple(n for n in MINI_MODELS if (WEIGHTS_DIR / f"{n}.safetensors").is_file())
    table = localization_table(names)
    seconds = time.perf_counter() - start
    localization = localization_markdown(table, seconds=seconds).replace("# Mini zoo: ", "## ", 1)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "mini_zoo.md").write_text(accuracy_markdown(table) + "\n" + localization)
    print((RESULTS_DIR / "mini_zoo.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
