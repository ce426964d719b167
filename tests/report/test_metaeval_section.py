"""The report's meta-evaluation section, from a metaeval folder (made-up rows: no model runs)."""

from __future__ import annotations

import pytest

from camscope.core.errors import InputError
from camscope.metaeval.summary import summarize, write_outputs
from camscope.report import build_report
from tests.metaeval.helpers import SETTINGS, fake_rows, fill_rows


def test_report_shows_the_metaeval_section_when_given_a_folder(results, tmp_path):
    folder = tmp_path / "metaeval"
    write_outputs(summarize(fake_rows(), SETTINGS, 60.0), folder)
    page = build_report(results, tmp_path / "with.html", metaeval=folder).read_text()
    assert 'id="metaeval"' in page and "deletion_auc" in page and "1 (is the known answer)" in page
    plain = build_report(results, tmp_path / "without.html").read_text()
    assert 'id="metaeval"' not in plain
    with pytest.raises(InputError, match="camscope metaeval"):
        build_report(results, tmp_path / "x.html", metaeval=tmp_path / "empty")


def test_the_section_lists_the_metrics_left_out_with_their_reason(tmp_path):
    from camscope.report.metaeval import metaeval_section

    settings = {**SETTINGS, "excluded_metrics": {"irof": "costs <96> forwards"}}
    write_outputs(summarize(fake_rows(), settings, 60.0), tmp_path)
    html = metaeval_section(tmp_path)
    assert "left out of the run" in html and "<li>irof: costs &lt;96&gt; forwards</li>" in html
    write_outputs(summarize(fake_rows(), SETTINGS, 60.0), tmp_path)
    assert "left out" not in metaeval_section(tmp_path)


def test_the_section_shows_what_removing_or_filling_the_object_does_per_model(tmp_path):
    from camscope.report.metaeval import metaeval_section

    write_outputs(summarize(fill_rows(black=0.01, mean=0.6), SETTINGS, 60.0), tmp_path)
    html = metaeval_section(tmp_path)
    assert "What removing the object does" in html and "object set to the image&#x27;s darkest value (black)" in html
    row = html[html.index("<tr><td>mini_resnet</td>", html.index("What removing")) :].split("</tr>")[0]
    assert row.count('class="num"') == 3 and ">0.90<" in row and ">0.01<" in row and ">0.60<" in row
    write_outputs(summarize(fake_rows(), SETTINGS, 60.0), tmp_path)  # a summary without the drops: no table
    assert "What removing the object does" not in metaeval_section(tmp_path)
