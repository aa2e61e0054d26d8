"""Comparison reports: self-contained HTML, summary CSV and Markdown from a results folder."""
from harness.reports.compare import build_comparison
from harness.reports.report import StatsSettings, build_report

__all__ = ["StatsSettings", "build_comparison", "build_report"]
