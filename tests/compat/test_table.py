"""The README's switching table is the script's output, and it shows every peer name present."""

from __future__ import annotations

import importlib

import pytest

from camscope.compat import DIFFERENCES
from camscope.testing.compat_table import BEGIN, END, README, markdown, rows

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def table():
    return rows()


def test_every_public_name_of_the_peer_is_at_the_same_path_with_a_compatible_signature(table):
    assert len(table) > 150  # the walk found the peer's modules (165 names in 1.5.7)
    problems = [f"{r.module}.{r.name}: {r.signature_problem or 'missing'}" for r in table if not r.ok]
    assert problems == []


def test_every_documented_difference_names_a_real_peer_name():
    for key in DIFFERENCES:
        module, name = key.rsplit(".", 1)
        assert hasattr(importlib.import_module(module), name), key


def test_readme_block_is_the_scripts(table):
    text = README.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert markdown(table) in text, "README out of date: run python benchmarks/compat_table.py"
