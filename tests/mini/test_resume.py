"""Resumable training: N steps straight equal N/2 steps, stop, resume, N/2 more — to the last bit."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from camscope.errors import InputError
from camscope.lab.train import CHECKPOINT_NAME, CONFIGS, Session, pretrain, train_supervised

STEPS = 6


def _tiny(name: str, **changes):
    """The model's own config at batch 8 (the schedule, momentum and drop-path paths all still run)."""
    return dataclasses.replace(CONFIGS[name], batch_size=8, warmup=2, **changes)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"differ after resuming: {different[:5]}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("mini_resnet", {}),
        ("mini_deit", {}),  # drop-path / torch RNG, gradient clipping
        ("mini_dino_resnet", {"freeze_last_layer": 0.5}),  # teacher, centre, augmentation generator
        ("mini_mocov3_resnet", {"pretrain_size": 32, "background_pool": 4}),
    ],
)
def test_resume_repeats_an_uninterrupted_run_bit_for_bit(name, changes, tmp_path):
    cfg = _tiny(name, **changes)
    trainer = train_supervised if cfg.ssl is None else pretrain
    straight, done = trainer(cfg, 3, Session(run_dir=tmp_path / "a", steps=STEPS))
    assert done.complete and done.step == STEPS and done.stopped == "finished"
    expected = _state(straight)

    _half, first = trainer(cfg, 3, Session(run_dir=tmp_path / "b", steps=STEPS, stop_at=STEPS // 2))
    assert (first.step, first.stopped, first.complete) == (STEPS // 2, "stop_at", False)
    assert (tmp_path / "b" / CHECKPOINT_NAME).is_file()
    torch.manual_seed(1234)  # a resumed run must not depend on the process's RNG state
    resumed, second = trainer(cfg, 3, Session(run_dir=tmp_path / "b", resume=True))
    assert (second.step, second.total, second.sessions, second.complete) == (STEPS, STEPS, 2, True)
    _assert_identical(expected, _state(resumed))


def test_resume_refuses_another_config_or_a_missing_checkpoint(tmp_path):
    cfg = _tiny("mini_resnet")
    train_supervised(cfg, 0, Session(run_dir=tmp_path, steps=2, stop_at=1))
    with pytest.raises(InputError, match="another config or seed"):
        train_supervised(cfg, 1, Session(run_dir=tmp_path, resume=True))
    with pytest.raises(InputError, match="schedule is 2 steps"):
        train_supervised(cfg, 0, Session(run_dir=tmp_path, resume=True, steps=5))
    with pytest.raises(InputError, match="no checkpoint"):
        train_supervised(cfg, 0, Session(run_dir=tmp_path / "none", resume=True))


def test_budget_stops_cleanly_with_a_checkpoint(tmp_path):
    cfg = _tiny("mini_resnet")
    _, done = train_supervised(cfg, 0, Session(run_dir=tmp_path, steps=1000, minutes=1e-6))
    assert done.stopped == "budget" and not done.complete and done.total == 1000
    assert (tmp_path / CHECKPOINT_NAME).is_file()
