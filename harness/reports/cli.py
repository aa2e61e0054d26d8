"""`harness report RESULTS_DIR [RESULTS_DIR_B]`: write the HTML/CSV/Markdown report."""
from __future__ import annotations

from typing import Optional

import click

from harness.core.errors import HarnessError, reports_errors
from harness.evaluation.significance import DEFAULT_PERMUTATION_RESAMPLES
from harness.reports.report import StatsSettings, build_report

_DIR = click.Path(file_okay=False)


@click.command("report")
@click.argument("results_dir", type=_DIR)
@click.argument("results_dir_b", type=_DIR, required=False)
@click.option("--baseline", metavar="PIPELINE",
              help="Pipeline the others are tested against (default: the config's `baseline`, "
                   "else the first in metrics.csv).")
@click.option("--pair", nargs=2, metavar="A B",
              help="Drill down into this pipeline pair only (default: baseline vs each other).")
@click.option("--out", "out_dir", type=_DIR,
              help="Output folder (default: reports/<run-name>, or reports/<A>-vs-<B>).")
@click.option("--seed", default=0, show_default=True, help="Seed of bootstrap and permutations.")
@click.option("--permutations", default=DEFAULT_PERMUTATION_RESAMPLES, show_default=True,
              type=click.IntRange(min=100), help="Resamples of the randomisation test.")
@reports_errors
def report_command(results_dir: str, results_dir_b: Optional[str], baseline: Optional[str],
                   pair: Optional[tuple[str, str]], out_dir: Optional[str], seed: int,
                   permutations: int) -> None:
    """Report on RESULTS_DIR; with RESULTS_DIR_B, the deltas from the first run to the second."""
    if results_dir_b and (baseline or pair):
        raise HarnessError("--baseline and --pair apply to a one-folder report, "
                           "not to a comparison of two folders")
    index = build_report(results_dir, out_dir, baseline=baseline, compare_to=results_dir_b,
                         pair=pair or None, stats=StatsSettings(permutation=permutations, seed=seed))
    click.echo(f"report: {index}")
