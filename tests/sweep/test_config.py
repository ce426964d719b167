"""Whole-config validation: every problem in one message, before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from camscope.cli import main
from camscope.sweep import ConfigError, load_config, make_tasks
from camscope.sweep.image_source import image_ids
from tests.sweep.helpers import write_config


def test_valid_config_gives_tasks_in_model_shard_method_order(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "s.toml", images={"source": "synthetic:5"}))
    assert Path(config.output) == tmp_path / "results"
    tasks = make_tasks(config, len(image_ids(config.images)))
    first = config.models[0].name
    assert [(t.model, t.shard, t.method) for t in tasks[:4]] == [
        (first, 0, "gradcam"),
        (first, 0, "eigencam"),
        (first, 1, "gradcam"),
        (first, 1, "eigencam"),
    ]
    assert tasks[-1].indices == (4,)
    assert len({t.id for t in tasks}) == len(tasks)


def test_hash_ignores_speed_settings_but_not_the_experiment(tmp_path: Path) -> None:
    base = load_config(write_config(tmp_path / "a.toml")).hash()
    faster = load_config(write_config(tmp_path / "b.toml", batch_size=3, metric_batch_size=7, output="elsewhere"))
    assert faster.hash() == base
    assert load_config(write_config(tmp_path / "c.toml", methods=["gradcam"])).hash() != base
    assert load_config(write_config(tmp_path / "d.toml", images={"source": "synthetic:4", "seed": 4})).hash() != base


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "bad.toml",
        bogus=1,
        methods=["gradcam", "nosuchcam"],
        models=["nosuchmodel", "resnet50", {"name": "resnet18", "random_weights": True, "colour": "red"}],
        images={"source": "no/such/folder"},
        metrics={"deletion": {"stepz": 3}, "pointing": {}, "wrongmetric": {}},
        batch_size=0,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    for needle in (
        "'bogus'",
        "nosuchcam",
        "nosuchmodel",
        "resnet50-0676ba61.pth",
        "'colour'",
        "no/such/folder",
        "'stepz'",
        "pointing needs ground truth",
        "wrongmetric",
        "batch_size must be a positive integer",
    ):
        assert needle in message, needle
    assert message.startswith(f"{path}: 10 problems")


def test_image_sources_folder_glob_list(tmp_path: Path) -> None:
    from camscope.data import generate
    from camscope.viz import save_png

    folder = tmp_path / "imgs"
    for i, picture in enumerate(generate(3, seed=0).images):
        save_png(picture, folder / ("sub" if i == 2 else "") / f"img{i}.png")
    (folder / "notes.txt").write_text("not an image")
    as_folder = load_config(write_config(tmp_path / "a.toml", images={"source": "imgs"}, metrics={"deletion": {}}))
    assert image_ids(as_folder.images) == ["img0.png", "img1.png", "sub/img2.png"]
    as_glob = load_config(write_config(tmp_path / "b.toml", images={"source": "imgs/*.png"}, metrics={"deletion": {}}))
    assert image_ids(as_glob.images) == ["img0.png", "img1.png"]
    as_list = load_config(
        write_config(tmp_path / "c.toml", images={"source": ["imgs/img1.png"]}, metrics={"deletion": {}})
    )
    assert len(as_list.images.paths) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no image files"):
        load_config(write_config(tmp_path / "d.toml", images={"source": "empty"}, metrics={"deletion": {}}))


def test_label_targets_need_a_model_with_the_synthetic_classes(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "s.toml", targets="label", models=[{"name": "resnet18", "random_weights": True, "input_size": 64}]
    )
    with pytest.raises(ConfigError, match="has 1000 outputs"):
        load_config(path)


def test_cli_prints_one_error_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path / "bad.toml", methods=["nosuchcam"])
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("camscope: error:") and "nosuchcam" in err and "Traceback" not in err
    assert main(["sweep", str(write_config(tmp_path / "ok.toml")), "--check"]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["mini_zoo.toml", "imagenet_seed_zoo.toml"])
def test_example_configs_have_only_missing_data_problems(name: str) -> None:
    """The examples parse; the only problems allowed are files this checkout lacks (weights, images)."""
    path = Path(__file__).resolve().parents[2] / "examples" / name
    try:
        config = load_config(path)
    except ConfigError as exc:
        problems = [line for line in str(exc).splitlines()[1:]]
        allowed = ("weights not found", "does not exist", "not registered", "unknown model 'mini_")
        assert all(any(a in p for a in allowed) for p in problems), problems
    else:
        assert config.methods and config.metrics
