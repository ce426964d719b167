"""Several threads on one model: every call gives exactly the map it gives alone.

Why: hooks, train/eval flags and ``fused_attn`` are state of the shared modules; without the model's
lock (:func:`camscope.core.capture.model_lock`) a thread read the other thread's activations (its image's
map, or a false "layer not used" error) and restored the other thread's flags (a model in train mode
was left in eval). A web service built on the API must never return another request's picture.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import camscope
from camscope import EigenCAM, GradCAM
from camscope.models import load_model

CALLS = 36


@pytest.fixture(scope="module")
def net() -> nn.Module:
    return load_model("mini_resnet")


@pytest.fixture(autouse=True)
def _one_thread(torch_threads: Callable[[int], Any]) -> Iterator[None]:
    with torch_threads(1):
        yield


def _pictures(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(n)]


def _in_threads(work: Callable[[int], Any], calls: int, threads: int = 2) -> dict[int, Any]:
    """``work(i)`` for every i, calls shared round-robin by ``threads`` threads started together."""
    results: dict[int, Any] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(first: int) -> None:
        torch.set_num_threads(1)  # the GEMM split (and so the rounding) of the sequential reference
        start.wait()
        try:
            for i in range(first, calls, threads):
                results[i] = work(i)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(results) == list(range(calls))
    return results


def _explain(net: nn.Module, picture: np.ndarray, i: int) -> np.ndarray:
    # alternate the default layer (from the spec) and a named one (probed for its reshape each call)
    layers = None if i % 2 == 0 else ["layer3"]
    result = camscope.explain(net, picture, layers=layers)
    assert isinstance(result, camscope.Explanation)
    return result.map


def _modes(net: nn.Module) -> list[bool]:
    return [m.training for m in net.modules()]


def test_explain_from_two_threads_equals_sequential(net: nn.Module) -> None:
    pictures = _pictures(CALLS)
    alone = [_explain(net, p, i) for i, p in enumerate(pictures)]
    together = _in_threads(lambda i: _explain(net, pictures[i], i), CALLS)
    wrong = [i for i in range(CALLS) if not np.array_equal(together[i], alone[i])]
    assert wrong == [], f"{len(wrong)} of {CALLS} maps differ from the sequential ones"


def test_gradcam_blocks_in_two_threads_equal_sequential(net: nn.Module) -> None:
    """Each thread has its own ``with`` blocks; one method per thread on different layers."""
    x = torch.stack([torch.from_numpy(p).permute(2, 0, 1).float() / 255 for p in _pictures(CALLS)])

    def block(i: int) -> np.ndarray:
        if i % 2 == 0:
            with GradCAM(net, target_layers=[net.layer4]) as cam:
                return cam(x[i : i + 1])[0]
        with EigenCAM(net, target_layers=[net.layer3]) as cam:
            return cam(x[i : i + 1])[0]

    alone = [block(i) for i in range(CALLS)]
    together = _in_threads(block, CALLS)
    wrong = [i for i in range(CALLS) if not np.array_equal(together[i], alone[i])]
    assert wrong == [], f"{len(wrong)} of {CALLS} maps differ from the sequential ones"


def test_train_mode_model_is_restored_after_threads(net: nn.Module) -> None:
    pictures = _pictures(CALLS)
    net.train()
    net.layer1.eval()  # a submodule in its own mode must keep it too
    try:
        before = _modes(net)
        alone = [_explain(net, p, i) for i, p in enumerate(pictures)]
        together = _in_threads(lambda i: _explain(net, pictures[i], i), CALLS)
        assert _modes(net) == before
        wrong = [i for i in range(CALLS) if not np.array_equal(together[i], alone[i])]
        assert wrong == [], f"{len(wrong)} of {CALLS} maps differ from the sequential ones"
    finally:
        net.eval()


def test_metrics_in_a_thread_do_not_disturb_a_cam_in_another(net: nn.Module) -> None:
    """A metric's plain forward passes take the lock too: another thread's hooks never record them."""
    pictures = _pictures(8)
    maps = [_explain(net, p, 0) for p in pictures]
    alone = [camscope.evaluate(net, p, m[None], metrics=["deletion"])["deletion_auc"] for p, m in zip(pictures, maps)]

    def work(i: int) -> Any:
        if i % 2 == 0:
            return _explain(net, pictures[i // 2], 0)
        k = i // 2
        return camscope.evaluate(net, pictures[k], maps[k][None], metrics=["deletion"])["deletion_auc"]

    together = _in_threads(work, 16)
    assert all(np.array_equal(together[2 * k], maps[k]) for k in range(8))
    assert all(np.array_equal(together[2 * k + 1], alone[k]) for k in range(8))
