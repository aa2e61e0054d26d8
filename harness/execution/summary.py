"""The compact table `harness run` prints at the end (values rounded for display only)."""
from __future__ import annotations

import click

from harness.storage.results_folder import layout as L


def _lookup(timings, stage: str, mode: str, stat: str):
    for s, m, name, value in timings:
        if (s, m, name) == (stage, mode, stat):
            return value
    return None


def format_table(outcome) -> str:
    measures = list(dict.fromkeys(m for ev in outcome.evaluations.values() for m in ev.aggregate))
    header = ["pipeline", *measures, "p50 ms", "p95 ms", "batch q/s"]
    rows = []
    for res in outcome.results:
        name = res.pipeline.name
        ev = outcome.evaluations.get(name)
        if res.error or ev is None:  # the reason is printed under the table
            rows.append([name, "FAILED"])
            continue
        p50 = _lookup(res.timings, L.TOTAL, L.SINGLE, L.P50_MS)
        p95 = _lookup(res.timings, L.TOTAL, L.SINGLE, L.P95_MS)
        qps = _lookup(res.timings, L.TOTAL, L.BATCH, L.QPS)
        rows.append([name, *(f"{ev.aggregate[m]:.4f}" if m in ev.aggregate else "-"
                             for m in measures),
                     "-" if p50 is None else f"{p50:.2f}", "-" if p95 is None else f"{p95:.2f}",
                     "-" if qps is None else f"{qps:.1f}"])
    widths = [max(len(str(r[i])) for r in [header, *rows] if i < len(r)) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def print_summary(outcome) -> None:
    click.echo("")
    click.echo(format_table(outcome))
    for res in outcome.results:
        if res.error:
            click.echo(f"failed: {res.pipeline.name}: {res.error.splitlines()[0]}", err=True)
    for res in outcome.results:
        for flag, count in res.flags.items():
            click.echo(f"flagged: {res.pipeline.name}: {count} queries with {flag} results", err=True)
    click.echo(f"\nresults: {outcome.out_dir}")
