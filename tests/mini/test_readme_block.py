"""The README's mini-zoo block is the table script's output, never hand-edited."""

from __future__ import annotations

from pathlib import Path

import pytest

from camscope.testing.readme_block import BEGIN, END, accuracy_markdown, write_readme

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_accuracy_table_is_the_scripts_and_matches_the_shipped_records():
    text = README.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    block = text[text.index(BEGIN) : text.index(END)]
    assert accuracy_markdown() in block, "README out of date: run python benchmarks/mini_zoo_report.py"


def test_write_readme_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{BEGIN}\nold\n{END}\nafter\n")
    write_readme(f"{BEGIN}\nnew\n{END}", readme)
    assert readme.read_text() == f"before\n{BEGIN}\nnew\n{END}\nafter\n"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no"):
        write_readme(f"{BEGIN}\nnew\n{END}", readme)
