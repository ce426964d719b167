"""Write a benchmark's table into README.md between its markers, so no table is ever typed by hand.

<!-- bench:NAME -->
...replaced by the script...
<!-- /bench:NAME -->
"""

from __future__ import annotations

import sys
from pathlib import Path

from camscope.testing.markers import replace_block

README = Path(__file__).resolve().parent.parent / "README.md"


def write_readme_table(name: str, text: str, readme: Path = README) -> None:
    """Replace what lies between the ``bench:name`` markers with ``text`` (the markers must exist)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    replace_block(readme, start, end, f"{start}\n{text.strip()}\n{end}")
    print(f"README.md: table {name!r} written")


def invocation(module: str) -> str:
    """The command line that ran this script, as a caption quotes it (without ``--write-readme``)."""
    return " ".join([f"python -m {module}", *sys.argv[1:]]).replace(" --write-readme", "")


def publish(name: str, text: str, write: bool) -> None:
    """Print a benchmark's table, and with ``write`` put it into README.md between its markers."""
    print(text)
    if write:
        write_readme_table(name, text)
