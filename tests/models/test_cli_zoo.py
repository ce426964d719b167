"""``camscope zoo``: what each model is and exactly which file to download where."""

from __future__ import annotations

import json

import pytest

from camscope.cli import main
from camscope.models import ENV_VAR, SEED_MODELS, list_models


@pytest.fixture
def clean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def test_table_lists_every_model_and_what_to_download(clean, capsys):
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    header, *rows = out.split("\n\n")[0].splitlines()
    assert header.split() == ["MODEL", "FAMILY", "TRAINING", "PARAMS", "INPUT", "TARGET", "LAYER", "WEIGHTS"]
    assert [row.split()[0] for row in rows] == list_models()  # the seed nine, then any registered later
    assert list_models()[: len(SEED_MODELS)] == list(SEED_MODELS)
    dino = next(row for row in rows if row.startswith("dino_resnet50 "))
    assert "self-supervised (DINO)" in dino and "25.6M" in dino and "224×224" in dino and "layer4[-1]" in dino
    assert "MISSING 2 of 2 files" in dino
    assert "https://dl.fbaipublicfiles.com/dino/dino_resnet50_pretrain/dino_resnet50_linearweights.pth" in out
    assert f"save as  {clean / 'pretrained_weights' / 'dino_resnet50_linearweights.pth'}" in out


def test_found_files_say_where(clean, monkeypatch, capsys):
    (clean / "w").mkdir()
    (clean / "w" / "resnet50-0676ba61.pth").write_bytes(b"")
    monkeypatch.setenv(ENV_VAR, str(clean / "w"))
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("resnet50 "))
    assert row.endswith(f"found: ${ENV_VAR}")
    assert "resnet50-0676ba61.pth (weights)" not in out  # not in the download list


def test_one_model_in_detail(clean, capsys):
    assert main(["zoo", "dino_xcit_small_12_p16", "--weights", str(clean)]) == 0
    out = capsys.readouterr().out
    assert "self-supervised (DINO)" in out and "bicubic" in out and "blocks[-1]" in out
    assert "dino_xcit_small_12_p16_linearweights.pth (linear head)" in out
    assert "RenamePrefix(old='module.linear.', new='head.')" in out
    assert f"save as  {clean / 'dino_xcit_small_12_p16_pretrain.pth'}" in out


def test_json_output(clean, capsys):
    assert main(["zoo", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == list_models()
    moco = next(e for e in entries if e["name"] == "mocov3_vit_base")
    assert moco["ssl_method"] == "MoCo v3" and moco["preprocessing"]["interpolation"] == "bilinear"
    assert moco["weights"][0]["found"] is False
    assert moco["weights"][0]["expected_path"] == str(clean / "pretrained_weights" / "linear-vit-b-300ep.pth.tar")


def test_unknown_model_is_a_one_line_error(clean, capsys):
    assert main(["zoo", "dino_resnet"]) == 2
    assert "did you mean" in capsys.readouterr().err
