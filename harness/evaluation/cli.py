"""`harness eval`: score a TREC run file against qrels with the harness's trec_eval semantics."""
from __future__ import annotations

import warnings

import click

from harness.core.errors import reports_errors
from harness.storage.trec import read_qrels, read_run
from harness.config import DEFAULT_MEASURES
from harness.evaluation.metrics import evaluate, parse_measures


_FILE = click.Path(exists=True, dir_okay=False)


@click.command("eval")
@click.option("--qrels", "qrels_path", required=True, type=_FILE,
              help="Qrels: TREC 'qid 0 docid grade' or BEIR TSV 'query-id corpus-id score'.")
@click.option("--run", "run_path", required=True, type=_FILE,
              help="TREC run: 'qid Q0 docid rank score tag'.")
@click.option("--measures", "-m", multiple=True, default=DEFAULT_MEASURES, show_default=True,
              help="An ir-measures string; repeat for several.")
@click.option("--per-query", is_flag=True, help="Also print one row per judged query.")
@click.option("--digits", default=4, show_default=True, type=click.IntRange(0, 17),
              help="Decimals shown (values are computed unrounded).")
@reports_errors
def eval_command(qrels_path: str, run_path: str, measures: tuple[str, ...], per_query: bool,
                 digits: int) -> None:
    """Evaluate RUN against QRELS: means over every judged query (trec_eval -c), ties broken
    by doc id descending for every measure."""
    parsed = parse_measures(measures)
    qrels = read_qrels(qrels_path)
    run = read_run(run_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate(qrels, run, parsed)
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)

    rows = []
    for measure, mean in result.aggregate.items():
        if per_query:
            rows += [(measure, qid, value) for qid, value in result.per_query[measure].items()]
        rows.append((measure, "all", mean))
    header = ("measure", "query", "value") if per_query else ("measure", "value")
    table = [header] + [(m, q, f"{v:.{digits}f}") if per_query else (m, f"{v:.{digits}f}")
                        for m, q, v in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    click.echo(f"judged queries: {len(qrels)}, without results (scored 0): "
               f"{result.queries_without_results}, unjudged in run (ignored): "
               f"{len(result.unjudged_queries)}")
