"""A small finished sweep to report on: files with mask annotations, one corrupt file, a CNN and a ViT."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sweep.helpers import write_config


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from camscope.data import generate
    from camscope.sweep import load_config, run_sweep
    from camscope.viz import save_png

    root = tmp_path_factory.mktemp("report")
    batch = generate(3, seed=5)
    for i in range(3):
        save_png(batch.images[i], root / "imgs" / f"img{i}.png")
        save_png(batch.masks[i].astype("uint8") * 255, root / "masks" / f"img{i}.png")
    (root / "imgs" / "broken.png").write_bytes(b"not a png at all")
    config = load_config(
        write_config(
            root / "sweep.toml",
            images={"source": "imgs", "annotations": "masks"},
            shard_size=2,
            report_images=3,  # broken.png is image 0: two images reach the grid
        )
    )
    run_sweep(config, progress=False)
    return Path(config.output)
