"""Shared sweep fixture: one reference run of the tiny sweep, which the resume, kill and Ray tests compare with."""

from __future__ import annotations

import pytest

from tests.sweep.helpers import write_config


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory):
    """(config path, config, results table) of one uninterrupted local run of the tiny sweep."""
    from camscope.sweep import ResultsStore, load_config, run_sweep

    folder = tmp_path_factory.mktemp("reference")
    path = write_config(folder / "sweep.toml")
    config = load_config(path)
    run_sweep(config, progress=False)
    return path, config, ResultsStore(config.output).read()
