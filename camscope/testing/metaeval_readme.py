"""Write the README's meta-evaluation block from a ``camscope metaeval`` output folder.

Why a script: the numbers between ``<!-- metaeval:begin … -->`` and ``<!-- metaeval:end -->`` are this
script's output, never typed by hand. It summarises the folder's parts (computing nothing new unless
``--run`` asks for it), writes the folder's table, plot and findings (copied to ``benchmarks/results/``),
and rewrites the README block: what was run, the table, the plot, and one finding per metric column.

    camscope metaeval --fresh --out mini_runs/metaeval                  # compute (resumable without --fresh)
    python benchmarks/metaeval_readme.py mini_runs/metaeval             # summarise + README block
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from camscope.metaeval.summary import Summary, excluded_markdown, findings_markdown, settings_sentence, table_markdown
from camscope.testing.markers import replace_block

README = Path(__file__).resolve().parents[2] / "README.md"  # the source checkout's README
RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"  # metaeval.md and .png are copied here
BEGIN, END = "<!-- metaeval:begin (written by benchmarks/metaeval_readme.py) -->", "<!-- metaeval:end -->"


def block_markdown(summary: Summary, source: str, note: str = "") -> str:
    """The README block: what was run (and where), the table, the findings in a fold."""
    return "\n".join(
        [
            BEGIN,
            f"*What was run* (`{source}`): {settings_sentence(summary, note)}",
            "",
            *([excluded_markdown(summary), ""] if excluded_markdown(summary) else []),
            table_markdown(summary),
            "",
            "![agreement with the known answer per metric and model, and trust against cost]"
            "(benchmarks/results/metaeval.png)",
            "",
            "<details><summary>Findings per metric column</summary>",
            "",
            findings_markdown(summary),
            "",
            "</details>",
            END,
        ]
    )


def source_of(settings: dict[str, Any], settings_hash: str) -> str:
    """The commands that reproduce a folder: its preset when its settings are one preset's, as registered now."""
    from camscope.metaeval.config import PRESETS, comparable, preset

    named = [name for name in PRESETS if comparable(preset(name).as_dict()) == comparable(settings)]
    run = (
        f"camscope metaeval --preset {named[0]} --fresh --out OUT"
        if named
        else "camscope metaeval (no preset's settings)"
    )
    return f"{run}; python benchmarks/metaeval_readme.py OUT; settings hash {settings_hash}"


def write_readme(block: str, readme: Path = README) -> None:
    """Replace the README's marked block (:func:`camscope.testing.markers.replace_block`)."""
    replace_block(readme, BEGIN, END, block)


def main() -> int:
    from camscope.metaeval import preset, read_rows, run_metaeval, summarize, write_outputs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a camscope metaeval output folder")
    parser.add_argument("--run", metavar="PRESET", help="first compute (or resume) this preset into the folder")
    parser.add_argument("--readme", type=Path, default=README, help="the README to rewrite (default: the repo's)")
    parser.add_argument("--note", default="", help="where the timings were taken (e.g. a machine shared with others)")
    args = parser.parse_args()
    if args.run:
        run_metaeval(preset(args.run), args.folder)
    table, meta, seconds = read_rows(args.folder)
    summary = summarize(table, meta["settings"], seconds, meta["cpu_seconds"])
    for path in write_outputs(summary, args.folder):
        if path.suffix in (".md", ".png"):
            (RESULTS_DIR / path.name).write_bytes(path.read_bytes())
    write_readme(block_markdown(summary, source_of(meta["settings"], meta["hash"]), args.note), args.readme)
    print(table_markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
