"""README blocks between markers, rewritten by the script that computes them."""

from __future__ import annotations

import re
from pathlib import Path


def replace_block(readme: Path, begin: str, end: str, block: str) -> None:
    """Replace the block from ``begin`` to ``end`` in ``readme`` with ``block`` (the markers must be there:
    nothing is appended silently). ``begin`` is matched up to its " (written by …)" note, so renaming the
    script that writes a block does not orphan it."""
    text = readme.read_text()
    pattern = re.compile(re.escape(begin.split(" (")[0]) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme} has no {begin!r} … {end!r} block to rewrite")
    readme.write_text(pattern.sub(lambda _: block, text, count=1))
