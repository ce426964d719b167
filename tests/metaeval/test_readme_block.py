"""The README's meta-evaluation block is the script's output: its format, and its numbers consistent with
each other and with the metric registry."""

from __future__ import annotations

import re

from camscope.metaeval.config import EXCLUDED_METRICS
from camscope.metaeval.summary import HEADER, summarize
from camscope.metrics import get_metric, metric_names
from camscope.testing.metaeval_readme import BEGIN, END, README, block_markdown
from tests.metaeval.helpers import SETTINGS, fake_rows

ROW = re.compile(r"^\| (\S+) \| ([↑↓]) \| (.+?) \| (\d+)/(\d+) \| (\S+) \| (\S+) \| (\S+) \| (\S+) \|$")
TAU = re.compile(r"^([+-]\d\.\d\d) \[([+-]\d\.\d\d), ([+-]\d\.\d\d)\]$")


def check_block(block: str) -> list[str]:
    """What is wrong with a block (empty: nothing)."""
    problems = []
    lines = block.splitlines()
    if lines[0] != BEGIN or lines[-1] != END:
        problems.append("markers")
    models = re.search(r"(\d+) mini model\(s\)", block)
    if not lines[1].startswith("*What was run*") or models is None:
        return [*problems, "no settings sentence"]
    if HEADER not in lines:
        return [*problems, "no table header"]
    start = lines.index(HEADER) + 2
    rows = [line for line in lines[start:] if line.startswith("| ")]
    declared = {c.name: c for name in metric_names() for c in get_metric(name).columns}
    for line in rows:
        match = ROW.match(line)
        if match is None:
            problems.append(f"row format: {line}")
            continue
        column, arrow, tau, passed, known = match.group(1, 2, 3, 4, 5)
        if column not in declared:
            problems.append(f"{column} is no registered metric's column")
        elif arrow != ("↑" if declared[column].higher_is_better else "↓"):
            problems.append(f"{column}: direction {arrow} is not the declared one")
        if tau != "1 (is the known answer)":
            found = TAU.match(tau)
            values = [float(v) for v in found.groups()] if found else []
            if not values or not (-1 <= values[1] <= values[2] <= 1 and -1 <= values[0] <= 1):
                problems.append(f"{column}: τ cell {tau!r}")
        if int(passed) > int(known) or int(known) > int(models.group(1)):
            problems.append(f"{column}: discrimination {passed}/{known} with {models.group(1)} models")
        for cell in match.group(6, 7):
            if cell != "n/a" and not 0 <= float(cell) <= 1:
                problems.append(f"{column}: consistency {cell} outside [0, 1]")
    heads = [line.split(": ", 1)[0] for line in lines if line.startswith("- `")]
    in_table = {m.group(1) for m in map(ROW.match, rows) if m}
    for name in (n for head in heads for n in re.findall(r"`(\S+?)`", head)):
        if name not in metric_names():
            problems.append(f"left out {name} is no registered metric")
        elif {c.name for c in get_metric(name).columns} & in_table:
            problems.append(f"left out {name} has a row in the table")
    findings = re.findall(r"^- \*\*(\S+)\*\*", block, re.M)
    if findings != [ROW.match(r).group(1) for r in rows if ROW.match(r)]:
        problems.append("the findings do not follow the table's rows")
    return problems


def test_the_scripts_block_passes_the_check():
    summary = summarize(fake_rows(), SETTINGS, 12.0)
    block = block_markdown(summary, "test")
    assert check_block(block) == []
    assert "| deletion_auc | ↓ |" in block and "1 (is the known answer)" in block
    broken = block.replace("| deletion_auc | ↓ |", "| deletion_auc | ↑ |")
    assert any("direction" in p for p in check_block(broken))


def test_the_block_states_the_metrics_left_out_and_why():
    left_out = {"irof": "an older wording", "sparseness": "too slow here", "pointing": "too slow here"}
    settings = {**SETTINGS, "excluded_metrics": left_out}
    block = block_markdown(summarize(fake_rows(), settings, 12.0), "test")
    assert check_block(block) == []
    assert "every registered metric (2) but the 3 left out below" in block
    assert "- `sparseness`, `pointing`: too slow here." in block
    assert f"- `irof`: {EXCLUDED_METRICS['irof']}." in block  # today's reason, where the code still leaves it out
    assert any("has a row" in p for p in check_block(block.replace("- `sparseness`", "- `deletion`")))


def test_readme_block_is_the_scripts_format():
    text = README.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert check_block(block) == [], "README block malformed: run python benchmarks/metaeval_readme.py FOLDER"


def test_the_block_names_the_preset_that_reproduces_the_folder_only_when_its_settings_are_that_presets():
    from camscope.metaeval.config import preset, with_overrides
    from camscope.testing.metaeval_readme import source_of

    quick = preset("quick")
    assert source_of(quick.as_dict(), "h").startswith("camscope metaeval --preset quick --fresh --out OUT;")
    assert "no preset" in source_of(with_overrides(quick, images=5).as_dict(), "h")
    full = preset("full").as_dict()
    reworded = {**full, "excluded_metrics": {name: "an older wording" for name in full["excluded_metrics"]}}
    assert source_of(reworded, "h").startswith("camscope metaeval --preset full")  # reasons are not settings
    fewer = {**full, "excluded_metrics": dict(list(full["excluded_metrics"].items())[1:])}
    assert "no preset" in source_of(fewer, "h")
