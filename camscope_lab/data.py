"""Training and test data for the mini zoo: generated on the fly, never stored.

Why on the fly: :func:`camscope.data.synthetic.generate` is deterministic per seed and fast, so a
training run draws a fresh chunk of scenes from a fresh seed each time (the models never see an
image twice and cannot memorise), while a fixed held-out seed gives the same test set on every
machine. Seeds are split into disjoint ranges so training, linear-probe and test images never mix.
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from camscope.data.synthetic import SyntheticBatch, generate, generate_twins, to_input
from camscope.models.mini import TEST_SEED

TRAIN_SEED_BASE = 1_000_000  # + run seed * 10_000 + chunk index
PROBE_SEED_BASE = 2_000_000  # linear-probe training images
CHUNK = 1024  # images generated at once
TWINS = ("object", "shape")  # what a scene's twin keeps: the whole object, or its shape, size and angle only


def batches(
    run_seed: int,
    batch_size: int,
    base: int = TRAIN_SEED_BASE,
    normalise: bool = True,
    start: int = 0,
    background_pool: int | None = None,
    plain_objects: bool = False,
    twins: str | None = None,
) -> Generator[tuple[torch.Tensor, torch.Tensor], None, None]:
    """Endless (inputs, labels) batches; chunk ``k`` is ``generate(CHUNK, base + run_seed·10⁴ + k)``.

    Inputs are normalised (``to_input``), or in [0, 1] with ``normalise=False`` for augmentations
    that work on pixels. The next chunk is rendered in a background thread while the model trains.
    ``start`` skips that many batches without rendering them, so a resumed run reads the same stream
    as an uninterrupted one. ``background_pool`` and ``plain_objects`` are passed to :func:`generate`.
    ``twins`` (the generator-paired method, one of ``TWINS``) makes inputs (2, B, 3, H, W): each scene
    and its twin from :func:`generate_twins`, with the object's appearance kept (``"object"``) or
    redrawn (``"shape"``).
    """
    if twins is not None and (twins not in TWINS or background_pool is not None):
        raise ValueError(f"twins must be one of {TWINS} and cannot take a background pool, got {twins!r}")
    per_chunk = CHUNK // batch_size
    scale = {} if normalise else {"mean": (0.0,) * 3, "std": (1.0,) * 3}
    with ThreadPoolExecutor(max_workers=1) as pool:
        chunk, skip = divmod(start, per_chunk)

        def render(k: int) -> Future[Any]:
            seed = base + run_seed * 10_000 + k
            if twins is not None:
                same = twins == "object"
                return pool.submit(generate_twins, CHUNK, seed, same_appearance=same, plain_objects=plain_objects)
            return pool.submit(generate, CHUNK, seed, background_pool=background_pool, plain_objects=plain_objects)

        pending = render(chunk)
        while True:
            data: SyntheticBatch | tuple[SyntheticBatch, SyntheticBatch] = pending.result()
            chunk += 1
            pending = render(chunk)
            if isinstance(data, tuple):  # each scene and its twin
                x, y = torch.stack([to_input(d.images, **scale) for d in data]), torch.from_numpy(data[0].labels)
            else:
                x, y = to_input(data.images, **scale), torch.from_numpy(data.labels)
            for i in range(skip, per_chunk):
                part = slice(i * batch_size, (i + 1) * batch_size)
                yield x[..., part, :, :, :], y[part]
            skip = 0


@torch.inference_mode()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted classes of normalised inputs ``x``, in eval mode, batched."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def accuracy(model: torch.nn.Module, n: int = 1000, seed: int = TEST_SEED, counterfactual: bool = False) -> float:
    """Top-1 accuracy (%) on ``generate(n, seed)`` — or on its object-removed counterfactuals."""
    data = generate(n, seed, counterfactual=counterfactual)
    images = data.counterfactual if counterfactual else data.images
    assert images is not None
    pred = predict(model, to_input(images))
    return float((pred.numpy() == data.labels).mean() * 100)
