"""Progress reports and cooperative cancellation of long loops (camscope.core.progress), in the methods using them."""

from __future__ import annotations

import threading

import pytest
import torch

from camscope import RELAX, ScoreCAM
from camscope.core.progress import Cancelled, check_cancelled, monitor, steps
from camscope.models import load_model


def test_steps_report_after_each_chunk_and_stop_before_the_next() -> None:
    assert list(steps([1, 2, 3], "plain")) == [1, 2, 3]  # no monitor: a plain loop
    reports: list[tuple[int, int, str]] = []
    with monitor(report=lambda *r: reports.append(r)):
        assert list(steps("abc", "letters", bar=False)) == ["a", "b", "c"]
    assert reports == [(1, 3, "letters"), (2, 3, "letters"), (3, 3, "letters")]
    cancel = threading.Event()
    seen = []
    with monitor(cancel=cancel), pytest.raises(Cancelled, match="stopped"):
        for item in steps(range(10), "numbers"):
            seen.append(item)
            if item == 2:
                cancel.set()
    assert seen == [0, 1, 2]
    check_cancelled()  # the monitor ended with its block


def test_a_monitor_belongs_to_its_thread() -> None:
    cancel = threading.Event()
    cancel.set()
    done = []
    with monitor(cancel=cancel):
        worker = threading.Thread(target=lambda: done.extend(steps([1, 2], "other thread")))
        worker.start()
        worker.join()
        with pytest.raises(Cancelled):
            check_cancelled()
    assert done == [1, 2]


@pytest.mark.parametrize("method", ["scorecam", "relax"])
def test_long_methods_report_progress_and_can_be_stopped(method: str) -> None:
    model = load_model("mini_resnet")
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    cam = (
        ScoreCAM(model, [model.layer4], batch_size=8)
        if method == "scorecam"
        else RELAX(model, num_masks=64, batch_size=8)
    )
    reports: list[tuple[int, int, str]] = []
    with monitor(report=lambda *r: reports.append(r)):
        cam(x)
    assert reports and reports[-1][0] == reports[-1][1] > 1
    cancel = threading.Event()
    with monitor(cancel=cancel, report=lambda *r: cancel.set()), pytest.raises(Cancelled):
        cam(x)
    hooks = [m for m in model.modules() if m._forward_hooks or m._backward_hooks or m._forward_pre_hooks]
    assert not hooks and not model.training  # stopped cleanly: the model is as it was
    assert cam(x).shape == (1, 64, 64)  # and usable again
