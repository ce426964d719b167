"""State of a DINO run's head, from its checkpoint: is the teacher's output sharp, or near the uniform collapse?

DINO's failure mode is a teacher whose distributions over the prototypes are (near) uniform: then the
loss sits near ln K whatever the student does, and little signal reaches the backbone. A linear probe does
not show it, and a backbone can keep spread features (KoLeo) while its head has collapsed. This prints, on
one batch of the run's own views (seed fixed, teacher and student in training mode as in a step):

* the teacher's target entropy at the run's temperature, with the run's centering and with the other one;
  the student's cross-entropy to them, and the KL part of it (what the student can still learn);
* the effective rank of the teacher head's L2-normalised bottleneck outputs, and of the backbone features;
* per scene, the spread (std) of the cosine logits over the prototypes, and the largest one.

Checkpoints live in the git-ignored run folders, and a run's later checkpoints overwrite its earlier ones,
so a number from here is reproducible while its checkpoint exists::

    python -m camscope_lab.experiments.mini_dino_head mini_runs/recipes/X13sk/mini_dino_xcit/checkpoint.pt \\
        mini_runs/recipes/D11pool1/mini_dino_resnet/checkpoint.pt
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from camscope_lab.augment import views
from camscope_lab.config import saved_config
from camscope_lab.data import batches
from camscope_lab.dino import Dino
from camscope_lab.probe import effective_rank
from camscope_lab.train import trained_module

COLUMNS = (
    "checkpoint",
    "step",
    "centering",
    "teacher temp",
    "target entropy (ln K)",
    "other centering",
    "student CE",
    "KL",
    "bottleneck rank",
    "backbone rank",
    "logit spread",
    "max cosine",
)


def entropy(p: torch.Tensor) -> float:
    return float(-(p * p.clamp_min(1e-12).log()).sum(1).mean())


@torch.no_grad()
def head_state(path: Path, seed: int) -> list[str]:
    state = torch.load(path, weights_only=True, map_location="cpu")
    cfg = saved_config(state, path)
    if cfg.ssl != "dino":
        raise SystemExit(f"{path}: a {cfg.ssl or 'supervised'} run, not DINO")
    dino = trained_module(cfg, fast_layout=False)
    assert isinstance(dino, Dino)
    dino.load_state_dict(state["module"])
    dino.train()
    images, _ = next(batches(seed, cfg.batch_size, normalise=False, twins=cfg.paired_views))
    crops = views(images, dino.crops, torch.Generator().manual_seed(seed))
    n_global = dino.crops[0].count
    teacher_feats, teacher = dino._forward(dino.teacher, dino.teacher_head, crops[:n_global])
    student = dino._forward(dino.student, dino.student_head, crops)[1]
    center = dino.center.clone()
    own, other = dino.centering, next(c for c in ("ema", "sinkhorn") if c != dino.centering)
    entropies = {}
    for centering in (own, other):
        dino.centering = centering
        targets = dino._targets(teacher)
        dino.center.copy_(center)  # _targets moves the EMA center: keep the checkpoint's
        entropies[centering] = sum(entropy(t) for t in targets) / len(targets)
        if centering == own:
            ce = float(dino.distillation_loss(targets, student))
    feats, logits = teacher_feats[0], teacher[0]  # the first global crop: backbone features, cosine logits
    z = F.normalize(dino.teacher_head.mlp(feats), dim=-1)
    k = logits.shape[1]
    return [
        str(path),
        str(state["step"]),
        own,
        f"{dino.teacher_temp:g}",
        f"{entropies[own]:.2f} ({math.log(k):.2f})",
        f"{other} {entropies[other]:.2f}",
        f"{ce:.2f}",
        f"{ce - entropies[own]:.2f}",
        f"{effective_rank(z):.1f}",
        f"{effective_rank(feats):.1f}",
        f"{float(logits.std(1).mean()):.3f}",
        f"{float(logits.max(1).values.mean()):.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, metavar="CHECKPOINT")
    parser.add_argument("--seed", type=int, default=5, help="batch and view seed")
    args = parser.parse_args()
    torch.manual_seed(0)
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for path in args.checkpoints:
        print("| " + " | ".join(head_state(path, args.seed)) + " |", flush=True)


if __name__ == "__main__":
    main()
