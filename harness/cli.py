"""The `harness` command line."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional

import click

from harness.core.errors import HarnessError, reports_errors


def _offline_defaults() -> None:
    # No hub traffic unless the user opts in by setting these to 0.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """Benchmark retrieval strategies: BM25, dense, late interaction, fusion, rerank."""
    _offline_defaults()
    from harness.execution import logs
    logs.configure(logging.DEBUG if verbose else logging.INFO)


@cli.command("run")
@click.argument("config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Results folder (default results/<config-name>-<timestamp>/). An existing one "
                   "is resumed: finished, verified nodes are not recomputed.")
@click.option("--max-queries", type=click.IntRange(min=1), help="Evaluate only the first N judged queries.")
@click.option("--force", is_flag=True, help="Recompute every node, even those saved in --out.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Embedding/index cache (default $HARNESS_CACHE_DIR or ./.cache/harness).")
@click.option("--no-report", is_flag=True, help="Do not build the HTML/CSV/Markdown report.")
@click.option("--plugins", "plugin_modules", multiple=True, metavar="MODULE",
              help="Import this Python module first (it registers plugins). Configs themselves "
                   "can only name registered plugins, never code.")
@reports_errors
def run_command(config_path: Path, out: Optional[Path], max_queries: Optional[int], force: bool,
                cache_dir: Optional[Path], no_report: bool, plugin_modules: tuple[str, ...]) -> None:
    """Run the benchmark CONFIG_PATH and print a results table."""
    import importlib

    from harness import config as config_mod
    from harness.execution.benchmark import run_benchmark
    from harness.execution.summary import print_summary
    for module in plugin_modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise HarnessError(f"--plugins {module}: cannot import: {exc}") from None
    config = config_mod.load(config_path)
    outcome = run_benchmark(config, out, max_queries, force, cache_dir)
    print_summary(outcome)
    if not no_report:
        from harness.reports import build_report
        try:
            click.echo(f"report:  {build_report(outcome.out_dir)}")
        except HarnessError as exc:  # the results stand; only the report is missing
            click.echo(f"warning: report not written: {exc}", err=True)
    failed = [r.pipeline.name for r in outcome.results if r.error]
    if failed:
        click.echo(f"{len(failed)} pipeline(s) failed: {', '.join(failed)} (see metadata.json)",
                   err=True)
        sys.exit(1)


@cli.command("plugins")
def plugins_command() -> None:
    """List every registered plugin and whether its dependencies are installed."""
    from harness.core import registry
    for p in registry.plugins():
        state = "ok" if p.available() else f"unavailable (install: {p.install_hint})"
        click.echo(f"{p.kind:10s} {p.name:16s} {state}  {p.description}")



def _register_subcommands() -> None:
    from harness.datasets.cli import datasets
    from harness.evaluation.cli import eval_command
    from harness.regression.cli import baseline_command, check_command
    from harness.reports.cli import report_command
    cli.add_command(check_command)
    cli.add_command(baseline_command)
    cli.add_command(datasets)
    cli.add_command(eval_command)
    cli.add_command(report_command)


_register_subcommands()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
