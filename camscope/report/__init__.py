"""Reports of sweep results: one self-contained HTML file (``camscope report RESULTS_DIR``)."""

from camscope.report.html import build_report

__all__ = ["build_report"]
