"""A check report as a text table (terminal), JSON (CI annotations) or Markdown (PR comments)."""
from __future__ import annotations

import json
from typing import Optional

from harness.regression.check import FAILING, IMPROVED, PASS, Check, Report

COLUMNS = ("pipeline", "measure", "expected", "actual", "delta", "tolerance", "outcome")
_MARK = {PASS: "✅", IMPROVED: "⬆️"}  # anything else is a failure: ❌


def _num(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.5f}" if signed else f"{value:.5f}"


def _cells(c: Check) -> tuple[str, ...]:
    outcome = c.outcome.upper() if c.outcome != PASS else c.outcome
    return (c.pipeline, c.measure, _num(c.expected), _num(c.actual), _num(c.delta, True),
            c.tolerance, outcome)


def diff_line(c: Check) -> str:
    """One failing or improved check in words: pipeline, measure, expected, actual, tolerance."""
    parts = []
    if c.expected is not None:
        parts.append(f"expected {_num(c.expected)}")
    if c.actual is not None:
        parts.append(f"actual {_num(c.actual)}")
        if c.delta is not None:
            parts.append(f"delta {_num(c.delta, True)}")
    if c.tolerance:
        parts.append(f"tolerance {c.tolerance}")
    text = f"{c.outcome.upper()} {c.pipeline} {c.measure}: {', '.join(parts)}"
    return text + (f"; {c.detail}" if c.detail else "") if parts else text + c.detail


def as_table(report: Report) -> str:
    rows = [COLUMNS] + [_cells(c) for c in report.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    flagged = [c for c in report.checks if c.outcome != PASS]
    if flagged:
        lines += [""] + [diff_line(c) for c in flagged]
    if report.update_hint:
        lines += ["", "*** IMPROVED: results are better than the expectations allow. "
                      "The expectations are stale: ***", *report.update_hint]
    lines += [""] + report.notes + [report.summary()]
    return "\n".join(lines)


def as_json(report: Report, exit_code: int) -> str:
    return json.dumps({
        "results": report.results, "expectations": report.expectations,
        "summary": report.summary(), "exit_code": exit_code,
        "counts": {o: report.count(o) for o in {c.outcome for c in report.checks}},
        "checks": [c.as_dict() for c in report.checks],
        "messages": [diff_line(c) for c in report.checks if c.outcome != PASS],
        "notes": report.notes, "update_hint": report.update_hint,
    }, indent=2)


def as_markdown(report: Report) -> str:
    head = "❌" if report.count(*FAILING) else "⬆️" if report.count(IMPROVED) else "✅"
    lines = [f"### {head} Regression check: {report.summary()}", "",
             f"Results `{report.results}` against `{report.expectations}`.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for c in report.checks:
        cells = list(_cells(c))
        cells[-1] = f"{_MARK.get(c.outcome, '❌')} {cells[-1]}"
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    flagged = [c for c in report.checks if c.outcome != PASS]
    if flagged:
        lines += [""] + [f"- {diff_line(c)}" for c in flagged]
    if report.update_hint:
        lines += ["", "**Improved beyond tolerance: update the expectations.**", "", "```",
                  *report.update_hint, "```"]
    if report.notes:
        lines += [""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"
