"""Write a benchmark's table into README.md between its markers, so no table is ever typed by hand.

<!-- bench:NAME -->
...replaced by the script...
<!-- /bench:NAME -->
"""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def write_readme_table(name: str, text: str, readme: Path = README) -> None:
    """Replace what lies between the ``bench:name`` markers with ``text`` (the markers must exist)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    content = readme.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"README.md has no {start} ... {end} markers")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{text.strip()}\n{end}{tail}")
    print(f"README.md: table {name!r} written")


def invocation(module: str) -> str:
    """The command line that ran this script, as a caption quotes it (without ``--write-readme``)."""
    return " ".join([f"python -m {module}", *sys.argv[1:]]).replace(" --write-readme", "")


def publish(name: str, text: str, write: bool) -> None:
    """Print a benchmark's table, and with ``write`` put it into README.md between its markers."""
    print(text)
    if write:
        write_readme_table(name, text)
