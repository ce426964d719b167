"""The README's mini-zoo block is the table script's output, never hand-edited."""

from __future__ import annotations

from pathlib import Path

from camscope.testing.readme_block import BEGIN, END, accuracy_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_accuracy_table_is_the_scripts_and_matches_the_shipped_records():
    text = README.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    block = text[text.index(BEGIN) : text.index(END)]
    assert accuracy_markdown() in block, "README out of date: run python benchmarks/mini_zoo_report.py"
