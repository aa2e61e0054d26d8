"""`harness check` and `harness baseline` (registered on the main group by harness/cli.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from harness.core.errors import reports_errors
from harness.storage.results_folder import load_results
from harness.storage.results_folder.layout import LATENCY_STATS, P95_MS
from harness.regression.baseline import (baseline_from_results, expectations_from_config,
                                         load_baseline, write_baseline)
from harness.regression.check import run_check
from harness.regression.render import as_json, as_markdown, as_table

_RESULTS = click.Path(file_okay=False, path_type=Path)  # existence is checked (exit 1), not click's 2



@click.command("check")
@click.argument("results_dir", type=_RESULTS)
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Baseline YAML (default: the `expect:` blocks of RESULTS_DIR/config.yaml).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "md"]), default="table",
              show_default=True, help="json for CI annotations, md for PR comments.")
@click.option("--improved-ok", is_flag=True,
              help="Exit 0 instead of 3 when results improved beyond tolerance (and none failed).")
@reports_errors
def check_command(results_dir: Path, baseline_path: Optional[Path], fmt: str,
                  improved_ok: bool) -> None:
    """Check RESULTS_DIR against expected values with two-sided tolerances.

    Exit 0: all pass. 1: a check failed, is missing, or an input is unreadable.
    3: improved beyond tolerance and nothing failed (the baseline is stale).
    """
    results = load_results(results_dir)
    expected = load_baseline(baseline_path) if baseline_path else \
        expectations_from_config(results)
    report = run_check(results, expected)
    code = report.exit_code(improved_ok)
    if fmt == "json":
        click.echo(as_json(report, code))
    elif fmt == "md":
        click.echo(as_markdown(report), nl=False)
    else:
        click.echo(as_table(report))
    raise SystemExit(code)


@click.command("baseline")
@click.argument("results_dir", type=_RESULTS)
@click.option("--write", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Baseline YAML to write (e.g. baselines/<name>.yaml); replaced atomically. "
                   "Tolerance overrides already in it are kept.")
@click.option("--pipelines", help="Comma-separated pipelines to include (default: all that ran).")
@click.option("--latency-reference", metavar="PIPELINE",
              help="Record each pipeline's latency as a ratio to this pipeline's, same run.")
@click.option("--latency-stat", type=click.Choice(LATENCY_STATS), default=P95_MS,
              show_default=True, help="Single-query statistic (stage total) the ratio compares.")
@click.option("--latency-slack", type=click.FloatRange(min=1.0, min_open=True), default=1.5,
              show_default=True, help="Allowed ratio band: measured x/÷ this factor.")
@reports_errors
def baseline_command(results_dir: Path, out: Path, pipelines: Optional[str],
                     latency_reference: Optional[str], latency_stat: str,
                     latency_slack: float) -> None:
    """Write a baseline from the run in RESULTS_DIR (full-precision values)."""
    names = [p.strip() for p in pipelines.split(",") if p.strip()] if pipelines else None
    results = load_results(results_dir)
    baseline = baseline_from_results(results, names, latency_reference, latency_stat,
                                     latency_slack)
    if out.exists():  # keep what people tuned by hand; values and kinds come from the run
        previous = load_baseline(out)
        baseline.tolerances = dict(previous.class_overrides)
        for name, pipe in baseline.pipelines.items():
            if name in previous.pipelines:
                pipe.tolerance = dict(previous.pipelines[name].tolerance)
    write_baseline(baseline, out)
    click.echo(f"wrote {out}: {len(baseline.pipelines)} pipeline(s), "
               f"{sum(len(p.measures) for p in baseline.pipelines.values())} values")
