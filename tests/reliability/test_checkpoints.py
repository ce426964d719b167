"""Bad weights files: one line naming the file and the problem; NaN weights are refused, not explained."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.reliability.helpers import assert_one_line_error


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def _mini_state() -> dict[str, torch.Tensor]:
    from camscope.models import load_model

    with pytest.warns(UserWarning):
        return load_model("mini_resnet", random_weights=True).state_dict()


def test_random_bytes_pth(run_cli, image: Path, tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    path.write_bytes(bytes(np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8)))
    line = assert_one_line_error(run_cli("explain", image, "--model", "mini_resnet", "--weights", path), "w.pth")
    assert "not a PyTorch checkpoint" in line and "refusing to unpickle" not in line


def test_empty_pth(run_cli, image: Path, tmp_path: Path) -> None:
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    assert_one_line_error(run_cli("explain", image, "--model", "mini_resnet", "--weights", path), "empty.pth")


def test_truncated_checkpoint(run_cli, image: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.pth"
    torch.save(_mini_state(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_one_line_error(run_cli("explain", image, "--model", "mini_resnet", "--weights", path), "cut.pth")


def test_code_executing_pickle_refused(run_cli, image: Path, tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"fc.weight": _Evil()}, path)
    line = assert_one_line_error(run_cli("explain", image, "--model", "mini_resnet", "--weights", path), "evil.pth")
    assert "refusing to unpickle" in line and "system" in line


def test_raw_pickle_with_code_refused(run_cli, image: Path, tmp_path: Path) -> None:
    path = tmp_path / "raw.pkl"
    path.write_bytes(pickle.dumps({"fc.weight": _Evil()}))
    line = assert_one_line_error(run_cli("explain", image, "--model", "mini_resnet", "--weights", path), "raw.pkl")
    assert "safe loader" in line or "refusing to unpickle" in line


def test_nan_weights_refused(run_cli, image: Path, tmp_path: Path) -> None:
    state = _mini_state()
    state["fc.weight"][0, 0] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    run = run_cli("explain", image, "--model", "mini_resnet", "--weights", path, "--out", tmp_path / "o")
    assert_one_line_error(run, "nan.pth", "NaN or infinite", "fc.weight")
    assert not (tmp_path / "o").exists()


def test_nan_weights_refused_by_evaluate(run_cli, image: Path, tmp_path: Path) -> None:
    state = _mini_state()
    state["layer1.0.conv1.weight"].fill_(float("inf"))
    path = tmp_path / "inf.pth"
    torch.save(state, path)
    run = run_cli("evaluate", image, "--model", "mini_resnet", "--weights", path)
    assert_one_line_error(run, "inf.pth", "layer1.0.conv1.weight")


def test_checkpoint_of_another_architecture(run_cli, image: Path, tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, path)
    run = run_cli("explain", image, "--model", "mini_resnet", "--weights", path)
    assert_one_line_error(run, "other.pth", "does not fit")


def test_garbage_safetensors(run_cli, image: Path, tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    assert_one_line_error(run_cli("explain", image, "--model", "mini_resnet", "--weights", path), "w.safetensors")


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("mini_resnt", "mini_resnet"), ("deit_smal_patch16_224", "deit_small_patch16_224"), ("resnet5O", "resnet50")],
)
def test_model_name_typo_gets_a_suggestion(run_cli, image: Path, typo: str, suggestion: str) -> None:
    line = assert_one_line_error(run_cli("explain", image, "--model", typo, "--random-weights"), typo)
    assert f"did you mean {suggestion}" in line


def test_random_weights_and_weights_together(run_cli, image: Path, tmp_path: Path) -> None:
    run = run_cli("explain", image, "--model", "mini_resnet", "--random-weights", "--weights", tmp_path)
    assert_one_line_error(run, "not allowed with")
