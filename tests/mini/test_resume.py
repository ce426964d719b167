"""Resumable training: N steps straight equal N/2 steps, stop, resume, N/2 more — to the last bit."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch

from camscope.core.errors import InputError
from camscope_lab.config import CONFIGS, saved_config
from camscope_lab.loop import CHECKPOINT_NAME, Session
from camscope_lab.records import method_state, method_state_path
from camscope_lab.train import pretrain, train_supervised

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
        # teacher, centre, augmentation generator; the twin stream of the generator-paired method
        ("mini_dino_resnet", {"freeze_last_layer": 0.5, "paired_views": "object"}),
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


def test_saved_config_reads_old_checkpoints_and_refuses_unknown_fields(tmp_path):
    """A field added after a checkpoint was written takes its default; a field this version lacks is an error."""
    cfg = _tiny("mini_mocov3_resnet", global_scale=(0.3, 1.0))
    train_supervised(_tiny("mini_resnet"), 0, Session(run_dir=tmp_path, steps=2, stop_at=1))
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert saved_config(state) == _tiny("mini_resnet")
    written = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}
    del written["plain_objects"]  # as a checkpoint from before that option existed
    assert saved_config({"config": json.dumps(written)}) == cfg  # lists back to tuples, the default filled in
    with pytest.raises(InputError, match="does not know \\(colour_mode\\)"):
        saved_config({"config": json.dumps({**written, "colour_mode": 1})}, "old.pt")


def test_a_finished_run_resumes_under_another_probe_size_without_training(tmp_path):
    """The probe acts after pre-training, so a finished run can be re-evaluated with more probe images."""
    cfg = _tiny("mini_mocov3_resnet", pretrain_size=32, probe_images=64)
    method, _ = pretrain(cfg, 0, Session(run_dir=tmp_path, steps=2))
    before = _state(method)
    again, redone = pretrain(dataclasses.replace(cfg, probe_images=128), 0, Session(run_dir=tmp_path, resume=True))
    assert (redone.step, redone.total, redone.sessions, redone.stopped) == (2, 2, 2, "finished")
    _assert_identical(before, _state(again))
    # a training field still counts, and the error names it
    with pytest.raises(InputError, match=r"another config or seed \(seed 0; lr [\d.e-]+ \(now 1\.0\)\)"):
        pretrain(dataclasses.replace(cfg, probe_images=128, lr=1.0), 0, Session(run_dir=tmp_path, resume=True))


def test_budget_stops_cleanly_with_a_checkpoint(tmp_path):
    cfg = _tiny("mini_resnet")
    _, done = train_supervised(cfg, 0, Session(run_dir=tmp_path, steps=1000, minutes=1e-6))
    assert done.stopped == "budget" and not done.complete and done.total == 1000
    assert (tmp_path / CHECKPOINT_NAME).is_file()


def test_continue_from_starts_a_new_schedule_on_the_earlier_weights(tmp_path):
    cfg = _tiny("mini_resnet")
    first, done = train_supervised(cfg, 3, Session(run_dir=tmp_path / "a", steps=4))
    assert done.complete and done.lineage.prior_steps == 0
    checkpoint = tmp_path / "a" / CHECKPOINT_NAME

    # stop_at=0: the continued run stops before its first step, holding exactly the earlier weights
    start, begun = train_supervised(
        cfg, 3, Session(run_dir=tmp_path / "b", steps=3, stop_at=0, continue_from=checkpoint)
    )
    _assert_identical(_state(first), _state(start))
    lineage = begun.lineage
    assert (begun.step, begun.total, lineage.prior_steps, lineage.continued_from) == (0, 3, 4, str(checkpoint))
    assert lineage.prior_seconds == pytest.approx(done.seconds)

    # the continued run resumes like any other, and still knows what it continues
    resumed, finished = train_supervised(cfg, 3, Session(run_dir=tmp_path / "b", resume=True))
    assert (finished.step, finished.complete, finished.lineage.prior_steps) == (3, True, 4)
    assert any(not torch.equal(a, b) for a, b in zip(_state(first).values(), _state(resumed).values(), strict=True))

    with pytest.raises(InputError, match="another config or seed"):
        train_supervised(cfg, 4, Session(run_dir=tmp_path / "c", steps=3, continue_from=checkpoint))
    with pytest.raises(InputError, match="another config or seed"):  # another model
        train_supervised(_tiny("mini_xcit"), 3, Session(run_dir=tmp_path / "c", steps=3, continue_from=checkpoint))
    with pytest.raises(InputError, match="no checkpoint"):
        train_supervised(cfg, 3, Session(run_dir=tmp_path / "c", steps=3, continue_from=tmp_path / "none.pt"))


def test_continued_run_reads_the_images_after_the_earlier_run(monkeypatch, tmp_path):
    import camscope_lab.train as train_module

    starts: list[int] = []
    real = train_module.batches

    def spy(*args, **kwargs):
        starts.append(kwargs["start"])
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "batches", spy)
    cfg = _tiny("mini_resnet")
    train_supervised(cfg, 3, Session(run_dir=tmp_path / "a", steps=4))
    train_supervised(cfg, 3, Session(run_dir=tmp_path / "b", steps=3, continue_from=tmp_path / "a" / CHECKPOINT_NAME))
    # a changed recipe may continue too: the 7 × 8 images read so far round up to 4 batches of 16
    wider = dataclasses.replace(cfg, batch_size=16)
    train_supervised(wider, 3, Session(run_dir=tmp_path / "c", steps=1, continue_from=tmp_path / "b" / CHECKPOINT_NAME))
    assert starts == [0, 4, 4]


@pytest.mark.slow
def test_continue_from_a_shipped_model_file_starts_every_backbone_copy_from_it(monkeypatch, tmp_path):
    """Run folders do not survive a fresh machine; the shipped model and its record do."""
    import camscope_lab.train as train_module
    from camscope_lab.ship import ship
    from camscope_lab.train import train

    cfg = _tiny("mini_mocov3_vit", probe_images=64)  # 48-px views: the ViT's position table is resampled
    monkeypatch.setitem(train_module.CONFIGS, cfg.name, cfg)
    first = train(cfg.name, tmp_path / "runs", steps=3)
    assert ship(tmp_path / "runs" / cfg.name, tmp_path / "zoo") == (cfg.name, True)
    assert first["kept_as_best"] and first["images"] == 3 * 8 and first["steps"] == 3
    weights = tmp_path / "zoo" / f"{cfg.name}.safetensors"
    shipped_bytes = weights.read_bytes()

    starts: list[int] = []
    real = train_module.batches
    monkeypatch.setattr(train_module, "batches", lambda *a, **k: starts.append(k["start"]) or real(*a, **k))
    method, begun = pretrain(cfg, 0, Session(run_dir=tmp_path / "b", steps=2, stop_at=0, continue_from=weights))
    lineage = begun.lineage
    assert (begun.step, lineage.prior_steps, lineage.prior_images, lineage.continued_from) == (0, 3, 24, str(weights))
    assert starts == [3]  # the images after the three batches the shipped model saw
    from safetensors.torch import load_file

    shipped = load_file(str(weights))
    for net in method.backbones():  # the trained encoder and its momentum copy
        for key, value in net.state_dict().items():
            assert torch.equal(value, shipped[key].to(value.dtype)), key
    # the heads, predictor and momentum projector come from the method-state file beside the model
    sidecar = method_state_path(weights)
    heads = load_file(str(sidecar))
    assert heads and not any(k.startswith(("base.", "momentum_encoder.")) for k in heads)
    for key, value in method_state(method).items():
        assert torch.equal(value, heads[key].to(value.dtype)), key
    assert lineage.continued_method_sha256 == hashlib.sha256(sidecar.read_bytes()).hexdigest()

    second = train(cfg.name, tmp_path / "c", steps=2, continue_from=weights)
    ship(tmp_path / "c" / cfg.name, tmp_path / "zoo")  # only if better, as every ship
    assert second["images"] == 5 * 8 and second["prior_steps"] == 3
    assert second["command"].endswith(f"--continue-from {weights}")
    assert second["continued_from_sha256"] == hashlib.sha256(shipped_bytes).hexdigest()  # it is overwritten later

    assert second["method_state"] == sidecar.name
    assert second["continued_method_sha256"] == lineage.continued_method_sha256

    # on request the heads start afresh (a collapsed head is better re-learned), and the record says so
    fresh = method_state(pretrain(cfg, 0, Session(steps=2, stop_at=0))[0])
    session = Session(run_dir=tmp_path / "f", steps=2, stop_at=0, continue_from=weights, fresh_heads=True)
    method, begun = pretrain(cfg, 0, session)
    assert begun.lineage.fresh_heads and begun.lineage.continued_method_sha256 == ""
    assert all(torch.equal(value, fresh[key]) for key, value in method_state(method).items())
    assert not all(torch.equal(value, heads[key].to(value.dtype)) for key, value in fresh.items())  # trained ≠ fresh
    third = train(cfg.name, tmp_path / "g", steps=1, continue_from=weights, fresh_heads=True)
    assert third["command"].endswith(f"--continue-from {weights} --fresh-heads")

    # heads that do not fit the recipe start afresh, with a warning; the backbone is still continued
    from safetensors.torch import save_file

    save_file({k: v[..., :1].contiguous() if v.ndim else v for k, v in heads.items()}, str(sidecar))
    with pytest.warns(UserWarning, match="start afresh"):
        method, begun = pretrain(cfg, 0, Session(run_dir=tmp_path / "e", steps=2, stop_at=0, continue_from=weights))
    assert begun.lineage.continued_method_sha256 == ""
    for key, value in method_state(method).items():
        assert torch.equal(value, fresh[key]), key
    sidecar.unlink()  # an older model file, shipped without one: fresh heads, no warning
    assert pretrain(cfg, 0, Session(steps=2, stop_at=0, continue_from=weights))[1].lineage.continued_method_sha256 == ""

    with pytest.raises(InputError, match="not 'mini_mocov3_vit' with seed 1"):
        pretrain(cfg, 1, Session(run_dir=tmp_path / "d", steps=2, continue_from=weights))
    (tmp_path / "zoo" / f"{cfg.name}.json").unlink()
    with pytest.raises(InputError, match="needs its record"):
        pretrain(cfg, 0, Session(run_dir=tmp_path / "d", steps=2, continue_from=weights))


def test_resampled_position_table_leaves_the_model_unchanged_at_its_own_size():
    from camscope.models import mini_archs

    model = mini_archs.build("vit").eval()
    x = torch.randn(2, 3, mini_archs.INPUT_SIZE, mini_archs.INPUT_SIZE)
    with torch.no_grad():
        before = model(x)
        mini_archs.resample_positions(model, True)
        assert torch.equal(model(x), before)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, mini_archs.NUM_CLASSES)
        mini_archs.resample_positions(model, False)
        assert torch.equal(model(x), before)
        with pytest.raises(AssertionError):  # the fixed 8×8 table again
            model(torch.randn(2, 3, 32, 32))
