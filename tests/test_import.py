"""``import camscope`` (and the command line's parser) stays a library import: no training lab, no plotting, no
results store or cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.imports import imports_under

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("camscope_lab", "matplotlib", "pyarrow", "ray")
PROBE = f"""
import json, sys
heavy = lambda: sorted({{m.split(".")[0] if not m.startswith("camscope") else m for m in sys.modules
                        if m.startswith({HEAVY!r})}})
import camscope, camscope.models, camscope.methods, camscope.metrics
from camscope.cli import build_parser
build_parser()  # every subcommand registered, as `camscope --help` does: train-mini too, without the lab
library = heavy()
import camscope_lab  # the probe must see a heavy import when there is one
print(json.dumps([library, heavy()]))
"""


@pytest.mark.slow
def test_importing_the_library_loads_no_training_code_plotting_or_store():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    library, after_lab = json.loads(out.stdout)
    assert library == []
    assert "camscope_lab" in after_lab


def test_tests_never_import_the_benchmark_scripts():
    """What a test and a published figure share lives in ``camscope.testing``; ``benchmarks/`` are scripts."""
    imports = imports_under(ROOT, ROOT / "tests", nested=True)
    assert ("tests/test_import.py", "tests.imports") in imports
    assert [f"{path}: {name}" for path, name in imports if name.split(".")[0] == "benchmarks"] == []
