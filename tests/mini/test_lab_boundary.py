"""The training lab stays outside the library: never imported by it, and writing only where it is told."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from camscope.cli import main
from camscope.core.errors import InputError
from camscope.models.mini import MINI
from camscope_lab.config import CONFIGS, MiniConfig
from camscope_lab.ship import ship, source_zoo
from tests.imports import imports_under

ROOT = Path(__file__).resolve().parents[2]


def test_no_library_module_imports_the_lab_at_module_level():
    """Only ``camscope train-mini`` reaches the lab, inside the command (so ``camscope --help`` never loads it)."""
    imports = imports_under(ROOT, ROOT / "camscope", nested=False)
    assert ("camscope/cli/train_mini.py", "argparse") in imports
    assert [f"{path}: {name}" for path, name in imports if name.split(".")[0] == "camscope_lab"] == []


def test_each_zoo_entry_declares_the_recipe_its_config_is_built_from():
    assert list(CONFIGS) == [e.name for e in MINI]
    for entry in MINI:
        cfg = CONFIGS[entry.name]
        assert (cfg.arch, cfg.ssl, cfg.paired_views) == (entry.arch, entry.ssl, entry.paired_views)
        assert {k: getattr(cfg, k) for k in entry.recipe} == dict(entry.recipe)
    with pytest.raises(TypeError):  # shared data: a recipe cannot be changed in place
        MINI[0].recipe["lr"] = 1.0  # type: ignore[index]


def test_a_recipe_with_a_field_no_config_takes_fails_in_one_line():
    from dataclasses import replace

    from camscope_lab.config import entry_config

    with pytest.raises(InputError, match=r"mini_resnet: its recipe has fields .* \(colour_mode\)"):
        entry_config(replace(MINI[0], recipe={"lr": 1e-3, "colour_mode": 1}))
    with pytest.raises(InputError, match=r"\(arch\)"):  # the entry's own fields are not the recipe's
        entry_config(replace(MINI[0], recipe={"arch": "vit"}))
    assert isinstance(entry_config(MINI[0]), MiniConfig)


def _files(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` (caches aside) with its modification time in ns."""
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.slow
def test_training_writes_only_under_the_runs_folder_and_shipping_is_its_own_step(tmp_path, monkeypatch, capsys):
    """A tiny ``camscope train-mini`` run changes nothing in the package or the lab, nor beside the runs folder."""
    import camscope
    import camscope_lab

    packages = [Path(camscope.__file__).parent, Path(camscope_lab.__file__).parent]
    before = [_files(p) for p in packages]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the default runs folder is relative: it too must stay where it is put
    runs = tmp_path / "my_runs"

    assert main(["train-mini", "--model", "mini_resnet", "--steps", "2", "--runs", str(runs)]) == 0
    assert [_files(p) for p in packages] == before
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_runs", "work"]
    written = sorted(_files(runs))
    assert written == [
        "mini_resnet/checkpoint.pt",
        "mini_resnet/last/mini_resnet.json",
        "mini_resnet/last/mini_resnet.safetensors",
        "mini_resnet/mini_resnet.json",
        "mini_resnet/mini_resnet.safetensors",
    ]
    assert "ship it: camscope train-mini --ship" in capsys.readouterr().out

    zoo = tmp_path / "zoo"
    assert main(["train-mini", "--ship", str(runs / "mini_resnet"), "--into", str(zoo)]) == 0
    assert sorted(_files(zoo)) == ["mini_resnet.json", "mini_resnet.safetensors"]
    assert (zoo / "mini_resnet.safetensors").read_bytes() == (
        runs / "mini_resnet" / "mini_resnet.safetensors"
    ).read_bytes()
    assert "shipped to" in capsys.readouterr().out
    # the same model again is not better than itself: nothing is copied unless forced
    record = json.loads((zoo / "mini_resnet.json").read_text())
    assert ship(runs / "mini_resnet", zoo) == ("mini_resnet", False)
    (zoo / "mini_resnet.json").write_text(json.dumps({**record, "test_accuracy": 100.0}))
    assert ship(runs / "mini_resnet" / "last", zoo, force=True) == ("mini_resnet", True)
    assert json.loads((zoo / "mini_resnet.json").read_text()) == json.loads(
        (runs / "mini_resnet" / "last" / "mini_resnet.json").read_text()
    )
    assert [_files(p) for p in packages] == before


def test_ship_refuses_a_folder_without_one_train_mini_model(tmp_path, capsys):
    with pytest.raises(InputError, match="found none"):
        ship(tmp_path, tmp_path / "zoo")
    assert main(["train-mini", "--ship", str(tmp_path), "--into", str(tmp_path / "zoo")]) == 2
    assert "found none" in capsys.readouterr().err
    assert main(["train-mini", "--into", str(tmp_path)]) == 2
    assert "--into and --force go with --ship" in capsys.readouterr().err
    assert main(["train-mini", "--ship", str(tmp_path), "--steps", "3"]) == 2
    assert "it takes no training options" in capsys.readouterr().err
    assert not (tmp_path / "zoo").exists()


def test_the_source_zoo_is_the_checkouts_package_folder():
    """Shipping by default goes into the checkout the lab sits in (to be committed), never elsewhere."""
    assert source_zoo() == ROOT / "camscope" / "zoo_weights"
    assert os.path.samefile(source_zoo(), Path(__import__("camscope").__file__).parent / "zoo_weights")
