"""`build_report`: one results folder -> reports/<run-name>/{index.html, summary.csv, summary.md}."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from harness.storage import atomic
from harness.core.errors import HarnessError
from harness.evaluation import significance as sig
from harness.storage.results_folder import PipelineInfo, Results, load_results
from harness.storage.results_folder.layout import FAILED
from harness.reports import markdown
from harness.reports.compare import build_comparison
from harness.reports.attribution import DEFAULT_CUT
from harness.reports.backends import backend_rows
from harness.reports.drilldown import CHANGED_SHOWN, TOP_SHOWN, RunCache, attributions, pair_view
from harness.reports.plots import all_plots
from harness.reports.render import render
from harness.reports.tables import (COST_COLUMNS, Leaderboard, SignificanceRow, choose_baseline,
                                    cost_rows, leaderboard, primary_measure, significance,
                                    stage_table)

DEFAULT_REPORTS_DIR = Path("reports")


@dataclass(frozen=True)
class StatsSettings:
    bootstrap: int = sig.DEFAULT_BOOTSTRAP_RESAMPLES
    permutation: int = sig.DEFAULT_PERMUTATION_RESAMPLES
    seed: int = sig.DEFAULT_SEED
    tie: float = sig.DEFAULT_TIE_TOLERANCE


def build_report(results_dir, out_dir=None, baseline: Optional[str] = None, compare_to=None,
                 pair: Optional[tuple[str, str]] = None,
                 stats: StatsSettings = StatsSettings()) -> Path:
    """Write the report of `results_dir` and return the path of its index.html.

    `compare_to`: a second results folder; the report then shows the deltas from this one to it.
    `pair`: the two pipelines of the per-query drill-down (default: baseline vs every other).
    """
    if compare_to is not None:
        return build_comparison(results_dir, compare_to, out_dir, stats.permutation, stats.seed)
    results = load_results(results_dir)
    base = choose_baseline(results, baseline)
    out = Path(out_dir) if out_dir is not None else DEFAULT_REPORTS_DIR / results.run_name
    context = _context(results, base, pair, stats)
    atomic.write_text(out / "summary.csv", _summary_csv(context))
    atomic.write_text(out / "summary.md", markdown.summary(context))
    atomic.write_text(out / "index.html", render("report.html.j2", **context))
    return out / "index.html"


def _context(results: Results, baseline: str, pair, stats: StatsSettings) -> dict:
    measure = primary_measure(results)
    runs = RunCache(results)
    # Attribution first: it reads first stages at rerank depth, the deepest cut the report needs.
    found, notes = attributions(results, runs)
    meta = results.metadata
    return dict(
        run_name=results.run_name, created=meta.get("created_utc"), baseline=baseline,
        dataset=meta.get("dataset") or {}, env=meta.get("environment") or {}, stats=stats,
        leaderboard=leaderboard(results, stats.bootstrap, stats.seed),
        sig_rows=significance(results, baseline, stats.permutation, stats.seed),
        quality_measure=measure,
        backend_rows=backend_rows(results, measure, stats.permutation, stats.seed),
        quality={p: v.get(measure) for p, v in results.metrics.items()},
        cost_labels=[c[0] for c in COST_COLUMNS], cost_columns=COST_COLUMNS,
        cost_rows=cost_rows(results), stage_table=stage_table(results),
        plots=all_plots(results),
        pairs=[pair_view(results, runs, a, b, measure) for a, b in _pairs(results, baseline, pair)],
        changed_shown=CHANGED_SHOWN, top_shown=TOP_SHOWN, has_qrels=results.qrels is not None,
        attributions=found, attribution_notes=notes, cut=DEFAULT_CUT,
        failed=[p for p in results.pipelines.values() if p.status == FAILED],
        warnings=_warnings(results),
        environment=_environment_rows(meta), packages=_packages(meta),
        pipelines_meta=_pipelines_meta(results), config_text=results.config_text(),
        filters=filter_rows(results, measure))


def _pairs(results: Results, baseline: str, pair) -> list[tuple[str, str]]:
    if pair is None:
        return [(baseline, p) for p in results.metrics if p != baseline]
    unknown = [p for p in pair if p not in results.metrics]
    if unknown:
        raise HarnessError(f"--pair: no metrics for {', '.join(unknown)}; pipelines with "
                           f"metrics: {', '.join(results.metrics)}")
    return [tuple(pair)]


def _warnings(results: Results) -> list[str]:
    out = []
    no_metrics = [p for p, info in results.pipelines.items()
                  if info.status != FAILED and p not in results.metrics]
    if no_metrics:
        out.append(f"pipelines with status ok but no rows in metrics.csv: {', '.join(no_metrics)}")
    if not results.per_query:
        out.append("per_query.csv has no rows: no confidence intervals or significance.")
    return out


def _flatten(prefix: str, value) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flatten(f"{prefix}.{k}" if prefix else k, v)]
    if isinstance(value, list):
        return [(prefix, "; ".join(map(str, value)) or "none")]
    return [(prefix, "" if value is None else str(value))]


def _environment_rows(meta: dict) -> list[tuple[str, str]]:
    shown = {k: v for k, v in meta.items() if k != "pipelines"}
    env = dict(shown.get("environment") or {})
    env.pop("packages", None)
    shown["environment"] = env
    return _flatten("", shown)


def _packages(meta: dict) -> list[tuple[str, str]]:
    return sorted(((meta.get("environment") or {}).get("packages") or {}).items())


def filter_rows(results: Results, measure: Optional[str]) -> list[dict]:
    """One row per filtered pipeline, from metadata.json `pipelines.<name>.filter`."""
    import json
    rows = []
    n_queries = (results.metadata.get("dataset") or {}).get("n_queries") or 0
    for name, entry in (results.metadata.get("pipelines") or {}).items():
        f = entry.get("filter")
        if not f or "stages" in f:  # a fusion of filtered inputs: see metadata.json
            continue
        short = f.get("short_of_k")
        rows.append({"pipeline": name, "spec": json.dumps(f["spec"]), "mode": f["mode"],
                     "value": results.metrics.get(name, {}).get(measure),
                     "ceiling": f["oracle_ceiling"].get(measure),
                     "removed": f["relevant_removed"],
                     "queries_removed": f["queries_with_relevant_removed"],
                     "short": "-" if short is None else
                     f"{short} ({short / n_queries:.1%})" if n_queries else str(short)})
    return rows


def _pipelines_meta(results: Results) -> list[tuple[str, dict]]:
    return [(name, {"status": info.status, "stages": list(info.stages),
                     "models": models_text(info)}) for name, info in results.pipelines.items()]


def models_text(info: PipelineInfo) -> str:
    """`pipelines.<name>.models` in words, `<stage label>: <config field>=<model name>` for each
    model a stage loaded ("none" where no stage loads one); for a run from a harness that did not
    record models, the stage labels, which name the plugins that ran."""
    if info.models is None:
        return ", ".join(info.stages)
    return "; ".join(f"{stage}: " + ", ".join(f"{field}={model['name']}"
                                               for field, model in by_field.items())
                     for stage, by_field in info.models.items()) or "none"


SUMMARY_COLUMNS = ("pipeline", "measure", "mean", "ci_low", "ci_high", "n_queries", "best",
                   "baseline", "delta", "p_t_test", "p_t_test_holm", "p_randomisation",
                   "p_randomisation_holm", "wins", "ties", "losses", "note")


def summary_rows(board: Leaderboard, sig_rows: list[SignificanceRow],
                 baseline: str) -> list[tuple]:
    """summary.csv's rows as values (SUMMARY_COLUMNS; None where not applicable): one per
    pipeline × measure, in leaderboard order. `harness.api` shows the same rows as a DataFrame."""
    by_key = {(r.pipeline, r.measure): r for r in sig_rows}
    rows = []
    for pipeline, cells in board.rows:
        for measure, cell in cells.items():
            row = by_key.get((pipeline, measure))
            c = row and row.comparison
            compared = ((baseline, c.delta, c.p_t_test, c.p_t_test_holm, c.p_randomisation,
                         c.p_randomisation_holm, c.record.wins, c.record.ties, c.record.losses,
                         "; ".join(row.notes)) if c else (None,) * 10)
            rows.append((pipeline, measure, cell.mean, cell.ci_low, cell.ci_high, cell.n_queries,
                         cell.best, *compared))
    return rows


def _summary_csv(context: dict) -> str:
    """Long table, one row per pipeline × measure, full precision; blank where not applicable."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for row in summary_rows(context["leaderboard"], context["sig_rows"], context["baseline"]):
        writer.writerow([_csv_cell(v) for v in row])
    return buffer.getvalue()


def _csv_cell(value) -> str:
    if isinstance(value, bool):
        return str(int(value))
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)
