"""One device vocabulary for sweeps and the CLI (camscope.core.devices)."""

from __future__ import annotations

import pytest
import torch

from camscope.cli import main
from camscope.core.devices import check_device, resolve_device
from camscope.core.errors import InputError
from camscope.sweep.config import parse_config


def test_auto_and_cpu_resolve() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    ("device", "message"), [("tpu", "not a torch device"), ("mps", "not supported"), (3, "string")]
)
def test_bad_devices_are_refused(device, message) -> None:
    with pytest.raises(InputError, match=message):
        check_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_is_refused_everywhere(capsys) -> None:
    with pytest.raises(InputError, match="CUDA is not available"):
        check_device("cuda:0")
    for argv in (["evaluate", "--model", "mini_resnet", "--synthetic", "1"], ["demo"]):
        assert main([*argv, "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    with pytest.raises(Exception, match="CUDA is not available"):
        parse_config({"device": "cuda", "models": ["mini_resnet"], "methods": ["gradcam"]}, source="t")
