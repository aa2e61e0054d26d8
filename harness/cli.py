"""The `harness` command line."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import click

from harness.core.errors import HarnessError, reports_errors


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """Benchmark retrieval strategies: BM25, dense, late interaction, fusion, rerank."""
    from harness.api import offline_defaults
    from harness.execution import logs
    offline_defaults()
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
@click.option("--executor", type=click.Choice(["local", "ray"]),
              help="Override the config's `executor` (docs/distributed.md).")
@click.option("--ray-address", metavar="ADDR",
              help="Existing Ray cluster (implies --executor ray; default: a local Ray for the run).")
@reports_errors
def run_command(config_path: Path, out: Optional[Path], max_queries: Optional[int], force: bool,
                cache_dir: Optional[Path], no_report: bool, plugin_modules: tuple[str, ...],
                executor: Optional[str], ray_address: Optional[str]) -> None:
    """Run the benchmark CONFIG_PATH and print a results table."""
    from harness.api import run
    from harness.execution.summary import print_summary
    if ray_address is not None and executor is None:  # an address only means something to Ray
        executor = "ray"
    overrides = {k: v for k, v in (("executor", executor), ("ray_address", ray_address))
                 if v is not None}
    results = run(config_path, out, max_queries=max_queries, force=force, cache_dir=cache_dir,
                  plugins=plugin_modules, **overrides)
    print_summary(results.outcome)
    if not no_report:
        try:
            click.echo(f"report:  {results.report()}")
        except HarnessError as exc:  # the results stand; only the report is missing
            click.echo(f"warning: report not written: {exc}", err=True)
    if results.failed:
        click.echo(f"{len(results.failed)} pipeline(s) failed: {', '.join(results.failed)} "
                   "(see metadata.json)", err=True)
        sys.exit(1)


@cli.command("load")
@click.argument("config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The results folder of a `harness run` of CONFIG_PATH; the load levels are "
                   "added to its timings.csv (stage `load`) and load.json.")
@click.option("--pipeline", required=True, help="A first-stage embedding pipeline of the config, "
                                                "e.g. 'dense-minilm/hnsw[M=16,efC=200,ef=64]'.")
@click.option("--clients", default="1,2,4,8", show_default=True,
              help="Comma-separated client counts, one level each (at most 64 clients).")
@click.option("--duration", type=float, default=10.0, show_default=True,
              help="Seconds each level runs (at most 600).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Embedding/index cache (default $HARNESS_CACHE_DIR or ./.cache/harness).")
@click.option("--max-queries", type=click.IntRange(min=1), help="Only the first N judged queries.")
@reports_errors
def load_command(config_path: Path, out: Path, pipeline: str, clients: str, duration: float,
                 cache_dir: Optional[Path], max_queries: Optional[int]) -> None:
    """Concurrent clients against one pipeline's ANN index: QPS and p50/p95/p99 per level."""
    from harness.execution.load import load_into_folder
    try:
        levels = [int(c) for c in clients.split(",") if c.strip()]
    except ValueError:
        raise HarnessError(f"--clients: expected comma-separated integers, got {clients!r}") from None
    result = load_into_folder(config_path, out, pipeline, levels, duration, cache_dir, max_queries)
    click.echo(f"{pipeline} ({result.backend}), {result.cores} CPU cores:")
    click.echo(f"{'clients':>8} {'q/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
               f"{'requests':>9} {'errors':>7}")
    for lv in result.levels:
        note = "  (clients > cores)" if lv.oversubscribed else ""
        click.echo(f"{lv.clients:>8} {lv.qps:>9.0f} {lv.p50_ms:>8.3f} {lv.p95_ms:>8.3f} "
                   f"{lv.p99_ms:>8.3f} {lv.requests:>9} {lv.errors:>7}{note}")
        if lv.first_error:
            click.echo(f"    first error: {lv.first_error}", err=True)
    click.echo(f"written to {out}/timings.csv (stage load) and {out}/load.json")


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
    from harness.training.cli import models
    cli.add_command(check_command)
    cli.add_command(baseline_command)
    cli.add_command(datasets)
    cli.add_command(eval_command)
    cli.add_command(report_command)
    cli.add_command(models)


_register_subcommands()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
