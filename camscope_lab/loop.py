"""The optimisation loop of a mini run, and its checkpoints: stop anywhere, resume bit for bit.

Why a time budget (``minutes``) next to a step count: the machines this runs on are shared, so a
fixed step count can take 3 minutes or 30. A run given ``minutes`` times its first steps, fixes the
total step count from that (the cosine schedule needs it) and records it; ``steps`` replays a run
exactly. A checkpoint holds the whole mutable state of a run (:class:`Run`), so a resumed run repeats
an uninterrupted one; a warm restart (``continue_from``) starts a new schedule on earlier weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from tqdm.auto import tqdm

from camscope.core.errors import InputError
from camscope_lab.config import EVALUATION_ONLY, MiniConfig, config_differences, saved_config
from camscope_lab.records import images_seen, method_state, method_state_path

if TYPE_CHECKING:
    from camscope_lab.dino import Dino
    from camscope_lab.moco import MocoV3

CALIBRATION_STEPS = 20
CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_SECONDS = 240.0  # at least one checkpoint every 5 minutes, so a killed run loses little
CHECKPOINT_VERSION = 1


def cosine_lr(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return base * (step + 1) / warmup
    return 0.5 * base * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


@dataclass(frozen=True)
class Session:
    """How long this invocation trains, and where the run's checkpoint lives.

    ``steps`` fixes the schedule of a new run (None: as many steps as fit in ``minutes``, or in the
    config's minutes, timed on the first steps). ``minutes`` is also this session's wall-clock budget:
    when it is spent (with 25 % slack if it also sized the schedule) the run stops cleanly, writes its
    checkpoint, and ``resume`` continues it later. ``stop_at`` stops once that many steps of the
    schedule are done (staged runs, tests). A checkpoint is written every ``checkpoint_seconds``.
    ``continue_from`` starts a new schedule (a warm restart: fresh optimiser, warm-up and cosine again)
    from the weights of another run's checkpoint of the same config, on the images after that run's.
    ``fresh_heads`` (with a model file) leaves the method-state file beside it unread: a head that has
    collapsed to the uniform output is better re-learned (``benchmarks/results/mini_recipes.md``).
    """

    run_dir: Path | None = None
    resume: bool = False
    steps: int | None = None
    minutes: float | None = None
    stop_at: int | None = None
    checkpoint_seconds: float = CHECKPOINT_SECONDS
    continue_from: Path | None = None
    fresh_heads: bool = False


@dataclass(frozen=True)
class Lineage:
    """The earlier runs a run continues (``Session.continue_from``); the field names are the checkpoint's
    and the record's keys."""

    prior_steps: int = 0
    prior_images: int = 0
    prior_seconds: float = 0.0
    continued_from: str = ""  # the checkpoint or model file it started from
    continued_from_sha256: str = ""  # that file's content: a shipped model file is overwritten later
    continued_method_sha256: str = ""  # the method-state file read beside a model file ("": none, fresh heads)
    fresh_heads: bool = False  # the method's heads were started afresh on request (``Session.fresh_heads``)

    @classmethod
    def read(cls, state: dict[str, Any]) -> Lineage:
        """From a checkpoint; keys it lacks (written before they existed) keep their defaults."""
        return cls(**{f.name: state.get(f.name, f.default) for f in fields(cls)})


@dataclass(frozen=True)
class Progress:
    """Where a run stands after a session."""

    step: int
    total: int
    seconds: float  # training seconds over all sessions
    sessions: int
    stopped: str  # "finished", "budget", "stop_at" or "signal"
    lineage: Lineage = Lineage()

    @property
    def complete(self) -> bool:
        return self.step >= self.total


@contextlib.contextmanager
def _stop_requests() -> Iterator[Callable[[], bool]]:
    """SIGTERM / SIGINT ask the loop to stop after the current step (and checkpoint) instead of dying."""
    caught: list[int] = []
    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    except ValueError:  # not the main thread: no handlers, the run just cannot be stopped politely
        pass
    try:
        yield lambda: bool(caught)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _decay_groups(cfg: MiniConfig, module: nn.Module | None, params: list[nn.Parameter]) -> list[dict[str, Any]]:
    """AdamW's parameter groups: one, or (``no_decay_1d``) the decayed ones and those exempt from decay."""
    if not cfg.no_decay_1d:
        return [{"params": params}]
    exempt = {id(p) for p in params if p.ndim <= 1}
    for sub in [] if module is None else module.modules():
        names = getattr(sub, "no_weight_decay", None)
        if callable(names):
            named = dict(sub.named_parameters())
            exempt |= {id(named[n]) for n in names() if n in named}
    return [
        {"params": [p for p in params if id(p) not in exempt]},
        {"params": [p for p in params if id(p) in exempt], "weight_decay": 0.0},
    ]


class Run:
    """The whole mutable state of one training run — exactly what a checkpoint holds.

    ``module`` is everything training changes (the model; for a self-supervised run the method, with
    its momentum teacher or encoder, heads and DINO's centre). Beside it: the AdamW state, the schedule
    (step and total), the torch RNG (drop-path), the augmentation generator, and the position in the
    data stream — one batch per step, so the step is the position. Restoring all of it makes a resumed
    run repeat an uninterrupted one bit for bit on the same machine.
    """

    def __init__(
        self,
        cfg: MiniConfig,
        seed: int,
        module: nn.Module | None,
        params: list[nn.Parameter],
        generator: torch.Generator | None = None,
    ) -> None:
        self.cfg, self.seed, self.module, self.generator = cfg, seed, module, generator
        self.params = params
        self.optimizer = torch.optim.AdamW(_decay_groups(cfg, module, params), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.step, self.seconds, self.sessions = 0, 0.0, 0
        self.total: int | None = None
        self.lineage = Lineage()

    def state(self) -> dict[str, Any]:
        assert self.module is not None, "a run without a module cannot be checkpointed"
        return {
            "version": CHECKPOINT_VERSION,
            "config": json.dumps(asdict(self.cfg)),
            "seed": self.seed,
            "step": self.step,
            "total": -1 if self.total is None else self.total,
            "seconds": self.seconds,
            "sessions": self.sessions,
            **asdict(self.lineage),
            "module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "generator": None if self.generator is None else self.generator.get_state(),
        }

    def save(self, path: Path) -> None:
        """Atomically: a run killed while writing keeps its previous checkpoint."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)

    def _read(self, path: Path, missing: str, same_config: bool = True) -> dict[str, Any]:
        """A checkpoint of this run's seed (and config), as data only (``weights_only``), or one clear error.

        A config field added after the checkpoint was written counts as unchanged while it holds its
        default, so a new option does not orphan the runs already under way. Fields of the evaluation
        after training (``EVALUATION_ONLY``) may differ: ``--resume`` of a finished run re-evaluates it.
        """
        if not path.is_file():
            raise InputError(f"no checkpoint at {path}; {missing}")
        state: dict[str, Any] = torch.load(path, weights_only=True)
        if state.get("version") != CHECKPOINT_VERSION:
            raise InputError(f"{path} is not a checkpoint of this version of train-mini")
        # The evaluation-only fields act after training: a resumed run may be evaluated anew.
        differ = config_differences(saved_config(state, path), self.cfg, EVALUATION_ONLY)
        if not same_config:
            differ = {k: v for k, v in differ.items() if k == "name"}
        if differ or state["seed"] != self.seed:
            made = "; ".join([f"seed {state['seed']}", *(f"{k} {a!r} (now {b!r})" for k, (a, b) in differ.items())])
            raise InputError(
                f"{path} was made with another config or seed ({made}); "
                "use the same model and --seed, or another --runs folder"
            )
        return state

    def _restore_weights_and_streams(self, state: dict[str, Any]) -> None:
        assert self.module is not None
        try:
            self.module.load_state_dict(state["module"])
        except RuntimeError as exc:  # another architecture or SSL head: say so in one line
            raise InputError(f"the checkpoint does not fit this model: {str(exc).splitlines()[0]}") from None
        torch.set_rng_state(state["torch_rng"])
        if self.generator is not None:
            self.generator.set_state(state["generator"])

    def load(self, path: Path) -> None:
        state = self._read(path, "start the run without --resume")
        self._restore_weights_and_streams(state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.seconds, self.sessions = state["step"], state["seconds"], state["sessions"]
        self.total = None if state["total"] < 0 else state["total"]
        self.lineage = Lineage.read(state)

    def continue_from(self, path: Path, fresh_heads: bool = False) -> None:
        """A warm restart: another run's weights (and random streams), a fresh optimiser and schedule.

        Why not a longer resume: a finished run's learning rate has decayed to zero, and lengthening a
        cosine schedule after the fact would not repeat any run. The new run may change the recipe (not
        the model or seed; the record keeps the checkpoint's path), and it reads the images after the
        earlier runs' (``data_start``), so it never sees one twice.
        """
        method_digest = ""
        if path.suffix == ".safetensors":
            steps, images, seconds = self._continue_from_model_file(path)
            method_digest = "" if fresh_heads else self._continue_method_state(path)
        else:
            state = self._read(path, "give the checkpoint.pt of a run of the same model", same_config=False)
            self._restore_weights_and_streams(state)
            earlier = Lineage.read(state)
            steps = earlier.prior_steps + state["step"]
            images = earlier.prior_images + state["step"] * saved_config(state, path).batch_size
            seconds = earlier.prior_seconds + state["seconds"]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        self.lineage = Lineage(steps, images, seconds, str(path), digest, method_digest, fresh_heads)

    def _continue_from_model_file(self, path: Path) -> tuple[int, int, float]:
        """A warm restart from a shipped model (``NAME.safetensors`` + ``NAME.json``): backbone weights only.

        Why: checkpoints live in the git-ignored run folder, which a fresh machine does not have; the
        shipped model is what survives between sessions. Every copy of the backbone (a self-supervised
        method's trained and momentum networks) starts from it; heads, optimiser and random streams start
        afresh. The record beside the weights says how many images the model has seen, so the new run
        reads the images after those. Returns the steps, images and seconds of the model so far.
        """
        from safetensors.torch import load_file

        assert self.module is not None
        record_path = path.with_suffix(".json")
        if not path.is_file() or not record_path.is_file():
            raise InputError(f"{path} needs its record {record_path.name} beside it (a model written by train-mini)")
        record = json.loads(record_path.read_text())
        if record.get("name") != self.cfg.name or record.get("seed") != self.seed:
            raise InputError(
                f"{path} is {record.get('name')!r} with seed {record.get('seed')}, not {self.cfg.name!r} with seed "
                f"{self.seed}; use the same model and --seed"
            )
        images = images_seen(record, record_path)
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
        nets = cast("Dino | MocoV3", self.module).backbones() if hasattr(self.module, "backbones") else (self.module,)
        for net in nets:
            try:
                net.load_state_dict(state)
            except RuntimeError as exc:
                raise InputError(f"{path} does not fit this model: {str(exc).splitlines()[0]}") from None
        return record.get("prior_steps", 0) + record["steps"], images, float(record.get("train_seconds", 0.0))

    def _continue_method_state(self, path: Path) -> str:
        """Load the method-state file beside a model file, if there is one; returns its SHA-256 ("": none).

        Why: a warm restart should be able to continue a healthy head as DINO's own resume does, and only
        files in git reach the next machine (a collapsed head is better re-learned: ``Session.fresh_heads``).
        Heads that do not fit the recipe (another ``out_dim``) start afresh, with a warning.
        """
        from safetensors.torch import load

        sidecar = method_state_path(path)
        if not hasattr(self.module, "backbones") or not sidecar.is_file():
            return ""
        data = sidecar.read_bytes()  # read once: loaded and hashed
        saved = load(data)
        current = method_state(cast(nn.Module, self.module))
        if set(saved) != set(current) or any(saved[k].shape != current[k].shape for k in current):
            warnings.warn(
                f"{sidecar.name} does not fit this recipe's heads; they start afresh (the backbone is continued)",
                stacklevel=2,
            )
            return ""
        with torch.no_grad():
            for key, value in current.items():
                value.copy_(saved[key].to(value.dtype))
        return hashlib.sha256(data).hexdigest()

    @property
    def data_start(self) -> int:
        """Position in the run seed's batch stream: after every batch this run and its earlier runs read."""
        return -(-self.lineage.prior_images // self.cfg.batch_size) + self.step

    def start(self, session: Session) -> None:
        """Resume from the session's checkpoint, or begin a new schedule of ``session.steps``."""
        if session.resume:
            assert session.run_dir is not None, "resuming needs a run folder"
            self.load(session.run_dir / CHECKPOINT_NAME)
            if session.steps is not None and self.total is not None and session.steps != self.total:
                raise InputError(f"the checkpoint's schedule is {self.total} steps, not --steps {session.steps}")
        elif session.continue_from is not None:
            self.continue_from(session.continue_from, session.fresh_heads)
        if self.total is None:
            self.total = session.steps

    def fit(
        self,
        step_loss: Callable[[float], torch.Tensor],
        session: Session,
        after_step: Callable[[float], None] | None = None,
        desc: str = "train",
    ) -> Progress:
        """AdamW + warm-up/cosine from the current step until the schedule, budget or ``stop_at`` ends.

        ``step_loss(progress)`` draws its own batch and returns the loss; ``progress`` ∈ [0, 1] drives
        the momentum schedules of the self-supervised methods.
        """
        cfg = self.cfg
        checkpoint = None if session.run_dir is None else session.run_dir / CHECKPOINT_NAME
        calibrate = self.total is None
        budget = session.minutes
        if budget is not None and calibrate:
            budget *= 1.25  # the schedule is sized to the budget: stop early only if the machine slows down
        begin = warm = last_save = time.perf_counter()
        before = self.seconds
        self.sessions += 1
        bar = tqdm(total=self.total, initial=self.step, desc=desc, unit="step", dynamic_ncols=True)
        stopped = "finished"
        with _stop_requests() as stop_requested:
            while self.total is None or self.step < self.total:
                now = time.perf_counter()
                if session.stop_at is not None and self.step >= session.stop_at:
                    stopped = "stop_at"
                    break
                if budget is not None and now - begin >= budget * 60:
                    stopped = "budget"
                    break
                if stop_requested():
                    stopped = "signal"
                    break
                if calibrate and self.step == CALIBRATION_STEPS // 2:
                    warm = now  # the first steps pay for start-up (threads, first data chunk)
                if calibrate and self.step == CALIBRATION_STEPS:
                    per_step = (now - warm) / (CALIBRATION_STEPS - CALIBRATION_STEPS // 2)
                    seconds = (session.minutes or cfg.minutes) * 60 - (warm - begin)
                    self.total = max(CALIBRATION_STEPS + 1, int(seconds / per_step))
                    bar.total = self.total
                total = self.total or 10**9
                loss, lr = self.one_step(step_loss, after_step, total)
                bar.update()
                if self.step % 20 == 0:
                    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.1e}")
                if checkpoint is not None and time.perf_counter() - last_save >= session.checkpoint_seconds:
                    self.seconds = before + time.perf_counter() - begin
                    self.save(checkpoint)
                    last_save = time.perf_counter()
        bar.close()
        self.seconds = before + time.perf_counter() - begin
        if checkpoint is not None:
            self.save(checkpoint)
        assert self.total is not None or stopped != "finished"
        return Progress(self.step, self.total or -1, self.seconds, self.sessions, stopped, self.lineage)

    def one_step(
        self, step_loss: Callable[[float], torch.Tensor], after_step: Callable[[float], None] | None, total: int
    ) -> tuple[float, float]:
        """One optimiser step of a schedule of ``total`` steps (public for ``experiments/mini_step_time.py``)."""
        cfg, step = self.cfg, self.step
        # Short runs warm up for 1/5 of the steps at most; the calibration steps (identical in a replay
        # with ``steps``) always follow the configured warm-up, so a replay repeats the run exactly.
        warmup = min(cfg.warmup, total // 5) if step >= CALIBRATION_STEPS else cfg.warmup
        lr = cosine_lr(step, total, cfg.lr, warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        progress = step / total if total < 10**9 else 0.0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = step_loss(progress).float()
        self.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.optimizer.step()
        if after_step is not None:
            after_step(progress)
        self.step += 1
        return float(loss.detach()), lr


def optimise(
    params: list[nn.Parameter],
    step_loss: Callable[[float], torch.Tensor],
    cfg: MiniConfig,
    *,
    minutes: float | None = None,
    steps: int | None = None,
    after_step: Callable[[float], None] | None = None,
    desc: str = "train",
) -> tuple[int, float]:
    """One uncheckpointed run of :meth:`Run.fit` (recipe experiments); returns (steps, seconds)."""
    run = Run(cfg, 0, None, params)
    run.start(Session(steps=steps))
    done = run.fit(step_loss, Session(steps=steps, minutes=minutes), after_step, desc)
    return done.step, done.seconds
