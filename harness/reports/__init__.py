"""Comparison reports: self-contained HTML, summary CSV and Markdown from a results folder."""
from .compare import build_comparison
from .report import StatsSettings, build_report

__all__ = ["StatsSettings", "build_comparison", "build_report"]
