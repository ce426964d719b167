"""The README blocks' writers: each script's ``write_readme`` replaces only its own marked block."""

from __future__ import annotations

import pytest

from camscope.testing import compat_table, metaeval_readme, readme_block


@pytest.mark.parametrize("writer", [compat_table, metaeval_readme, readme_block], ids=lambda m: m.__name__)
def test_write_readme_replaces_only_the_marked_block(tmp_path, writer):
    begin, end = writer.BEGIN, writer.END
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{begin}\nold\n{end}\nafter\n")
    writer.write_readme(f"{begin}\nnew\n{end}", readme)
    assert readme.read_text() == f"before\n{begin}\nnew\n{end}\nafter\n"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no"):
        writer.write_readme(f"{begin}\nnew\n{end}", readme)
