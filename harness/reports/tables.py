"""The report's tables, computed from a results folder: generic over pipelines, measures and stages.

Nothing here formats for display; `render` does. Every measure found in metrics.csv becomes a
column (higher is better for all of them), every (stage, mode, stat) in timings.csv a cost figure.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional

from harness.core.errors import HarnessError
from harness.evaluation import significance as sig
from harness.storage.results_folder import Results
from harness.storage.results_folder import layout as L

log = logging.getLogger(__name__)

PRIMARY_MEASURES = ("nDCG@10",)  # the quality axis of plots and drill-downs, when present


def primary_measure(results: Results) -> Optional[str]:
    measures = results.measures
    return next((m for m in PRIMARY_MEASURES if m in measures), measures[0] if measures else None)


@dataclass(frozen=True)
class Cell:
    mean: float
    ci_low: Optional[float]   # None where per_query.csv has fewer than 2 values for it
    ci_high: Optional[float]
    n_queries: int
    best: bool


@dataclass
class Leaderboard:
    measures: list[str]
    rows: list[tuple[str, dict[str, Cell]]]   # pipelines in metrics.csv order


def leaderboard(results: Results, n_resamples: int = sig.DEFAULT_BOOTSTRAP_RESAMPLES,
                seed: int = sig.DEFAULT_SEED) -> Leaderboard:
    """Means from metrics.csv (the runner's numbers) with bootstrap CIs from per_query.csv."""
    measures = results.measures
    best = {m: max((v[m] for v in results.metrics.values() if m in v)) for m in measures}
    rows = []
    for pipeline, means in results.metrics.items():
        cells = {}
        for measure, mean in means.items():
            values = list(results.per_query.get(pipeline, {}).get(measure, {}).values())
            low, high = (None if math.isnan(end) else end
                         for end in sig.bootstrap_ci(values, n_resamples, seed=seed))
            cells[measure] = Cell(mean, low, high, len(values), mean == best[measure])
        rows.append((pipeline, cells))
    return Leaderboard(measures, rows)


@dataclass(frozen=True)
class SignificanceRow:
    pipeline: str
    measure: str
    comparison: sig.Comparison
    notes: tuple[str, ...] = ()   # see `comparison_notes`


def choose_baseline(results: Results, baseline: Optional[str]) -> str:
    """`baseline`, else the config's `baseline` when that pipeline has metrics, else the first."""
    if not results.metrics:
        raise HarnessError(f"{results.path}: metrics.csv has no rows; nothing to report")
    if baseline is None:
        configured = (results.config().get("baseline")
                      if (results.path / L.CONFIG).exists() else None)
        if configured in results.metrics:
            return configured
        if configured is not None:
            log.warning("the config's baseline %r has no metrics (failed?); comparing against "
                        "the first pipeline instead", configured)
        return next(iter(results.metrics))
    if baseline not in results.metrics:
        raise HarnessError(f"baseline {baseline!r} has no metrics; pipelines with metrics: "
                           f"{', '.join(results.metrics)}")
    return baseline


def significance(results: Results, baseline: str,
                 n_resamples: int = sig.DEFAULT_PERMUTATION_RESAMPLES,
                 seed: int = sig.DEFAULT_SEED) -> list[SignificanceRow]:
    """Every other pipeline against the baseline on every measure both have per-query values
    for, paired over their common queries; Holm-adjusted over the whole table, per test."""
    base = results.per_query.get(baseline, {})
    pending = []
    for pipeline, by_measure in results.per_query.items():
        if pipeline == baseline or pipeline not in results.metrics:
            continue
        for measure in results.measures:
            comparison = sig.compare_by_query(by_measure.get(measure, {}), base.get(measure, {}),
                                              n_resamples, seed)
            if comparison is not None:
                pending.append((pipeline, measure, comparison))
    adjusted = sig.with_holm([c for _, _, c in pending])
    return [SignificanceRow(p, m, c, tuple(comparison_notes(c, p, baseline)))
            for (p, m, _), c in zip(pending, adjusted)]


def comparison_notes(c: sig.Comparison, name_a: str, name_b: str) -> list[str]:
    """What a reader of `c` (a = `name_a` against b = `name_b`) must know: queries the pairing
    left out, and why a p-value is n/a."""
    notes = []
    if c.only_a or c.only_b:
        notes.append(f"over the {c.n_queries} common queries ({c.only_a} only in {name_a}, "
                     f"{c.only_b} only in {name_b})")
    if c.note:
        notes.append(c.note)
    return notes


# Headline cost columns: (label, stage, mode, stat). Stages a pipeline lacks stay blank.
COST_COLUMNS = (
    ("p50 ms", L.TOTAL, L.SINGLE, L.P50_MS),
    ("p95 ms", L.TOTAL, L.SINGLE, L.P95_MS),
    ("p99 ms", L.TOTAL, L.SINGLE, L.P99_MS),
    ("q/s single", L.TOTAL, L.SINGLE, L.QPS),
    ("q/s batch", L.TOTAL, L.BATCH, L.QPS),
    ("build s", L.INDEX, L.BUILD, L.WALL_S),
    ("index size", L.INDEX, L.BUILD, L.SIZE_BYTES),
    ("peak memory", L.INDEX, L.BUILD, L.PEAK_RSS_DELTA_BYTES),
)
STAT_ORDER = (L.P50_MS, L.P95_MS, L.P99_MS, L.MEAN_MS, L.QPS, L.WALL_S, L.N_QUERIES, L.THREADS,
              L.SIZE_BYTES, L.PEAK_RSS_DELTA_BYTES)
STAGE_ORDER = (L.INDEX, L.FIRST_STAGE, L.FUSION, L.RERANK, L.TOTAL)


def cost_rows(results: Results) -> list[tuple[str, list[Optional[float]]]]:
    pipelines = list(dict.fromkeys([*results.metrics, *(r.pipeline for r in results.timings)]))
    return [(p, [results.timing(p, stage, mode, stat) for _, stage, mode, stat in COST_COLUMNS])
            for p in pipelines]


@dataclass
class StageTable:
    stats: list[str]
    rows: list[tuple[str, str, str, dict[str, float]]]   # pipeline, stage, mode, stat -> value


def stage_table(results: Results) -> StageTable:
    """Every timings.csv row, one table row per (pipeline, stage, mode); unknown stats appended."""
    grouped: dict[tuple[str, str, str], dict[str, float]] = {}
    for r in results.timings:
        grouped.setdefault((r.pipeline, r.stage, r.mode), {})[r.stat] = r.value
    seen = list(dict.fromkeys(r.stat for r in results.timings))
    stats = [s for s in STAT_ORDER if s in seen] + [s for s in seen if s not in STAT_ORDER]
    pipeline_order = {p: i for i, p in enumerate(dict.fromkeys(r.pipeline for r in results.timings))}

    def order(key):
        pipeline, stage, mode = key
        stage_rank = STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)
        return (pipeline_order[pipeline], stage_rank, stage, mode)

    return StageTable(stats, [(*key, grouped[key]) for key in sorted(grouped, key=order)])
