"""The report's plots, each an inline SVG string (empty when the run has no such data)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from harness.storage.results_folder import Results
from harness.storage.results_folder.layout import (ANN_SEARCH, FIRST_STAGE, LOAD, P95_MS, P99_MS,
                                                   QPS, SINGLE, TOTAL)
from harness.reports.svg import Point, pareto_front, scatter
from harness.reports.tables import primary_measure

ANN_RECALL_PREFIX = "ann_recall"
ILS_PREFIX = "ILS@"
# Where a pipeline's single-query q/s and p95 latency are read from, first found wins.
SINGLE_QPS = ((TOTAL, SINGLE, QPS), (FIRST_STAGE, SINGLE, QPS))
SINGLE_P95 = ((TOTAL, SINGLE, P95_MS), (FIRST_STAGE, SINGLE, P95_MS))
# ANN points: the index search alone (ann-benchmarks' view) when the run measured it.
SEARCH_QPS = ((ANN_SEARCH, SINGLE, QPS), *SINGLE_QPS)


@dataclass(frozen=True)
class Plot:
    key: str
    title: str
    note: str
    svg: str


def _timing(results: Results, pipeline: str, candidates) -> Optional[float]:
    for key in candidates:
        value = results.timing(pipeline, *key)
        if value is not None:
            return value
    return None


def series(results: Results, pipeline: str) -> str:
    """The line a pipeline's point belongs to: its ANN sweep (`pipelines.<name>.sweep`); for a
    reranked pipeline, one reranker over one first stage (the name without `@<rerank_depth>`);
    else the pipeline alone."""
    info = results.pipelines[pipeline]
    if info.sweep:
        return info.sweep
    depth = f"@{info.rerank_depth}"
    if info.parent and info.rerank_depth and pipeline.endswith(depth):
        return pipeline[:-len(depth)]
    return pipeline


def ann_pareto(results: Results) -> Optional[Plot]:
    recall = next((m for m in results.measures if m.startswith(ANN_RECALL_PREFIX)), None)
    if recall is None:
        return None
    points = []
    for pipeline, means in results.metrics.items():
        qps = _timing(results, pipeline, SEARCH_QPS)
        if recall in means and qps and qps > 0:
            points.append(Point(means[recall], qps, pipeline, series(results, pipeline)))
    if not points:
        return None
    front = pareto_front(points, minimize_x=False)
    return Plot("ann", f"ANN sweeps: {recall} vs single-query q/s",
                f"{len(points)} settings; {len(front)} on the Pareto frontier (no setting is both "
                "more accurate and faster). Up and right is better.",
                scatter(points, recall, "queries/s (single query)", y_log=True, frontier=front,
                        title=f"{recall} vs q/s"))


def quality_vs_latency(results: Results) -> Optional[Plot]:
    measure = primary_measure(results)
    points = []
    for pipeline, means in results.metrics.items():
        p95 = _timing(results, pipeline, SINGLE_P95)
        if measure in means and p95 and p95 > 0:
            points.append(Point(p95, means[measure], pipeline, series(results, pipeline)))
    if not points:
        return None
    front = pareto_front(points, minimize_x=True)
    return Plot("latency", f"{measure} vs p95 single-query latency",
                f"Frontier: {', '.join(p.label for p in front)}. Up and left is better.",
                scatter(points, "p95 latency (ms)", measure, x_log=True, frontier=front,
                        annotate=True, title=f"{measure} vs p95 latency"))


def quality_vs_depth(results: Results) -> Optional[Plot]:
    measure = primary_measure(results)
    points = []
    for pipeline, means in results.metrics.items():
        info = results.pipelines[pipeline]
        if info.rerank_depth and measure in means:
            points.append(Point(info.rerank_depth, means[measure], pipeline,
                                series(results, pipeline)))
    if not points:
        return None
    return Plot("depth", f"{measure} vs rerank depth",
                "Each line is one reranker over one first stage; depth = first-stage results "
                "reranked.",
                scatter(points, "rerank depth", measure, x_log=True, connect=True,
                        title=f"{measure} vs rerank depth"))


def load_curves(results: Results) -> list[Plot]:
    """`harness load` levels: QPS vs clients and p99 latency vs QPS, one line per pipeline."""
    levels: dict[tuple[str, str], dict[str, float]] = {}
    for r in results.timings:
        if r.stage == LOAD:
            levels.setdefault((r.pipeline, r.mode), {})[r.stat] = r.value
    points = [(pipeline, s) for (pipeline, _), s in levels.items()
              if {"clients", QPS, P99_MS} <= set(s)]
    if not points:
        return []
    scaling = [Point(s["clients"], s[QPS], p, p) for p, s in points]
    tail = [Point(s[QPS], s[P99_MS], p, p) for p, s in points]
    note = ("Concurrent client processes, each sending one query at a time for a fixed duration "
            "(load.json). Database backends' latency includes the client round trip.")
    return [Plot("load-qps", "Load: queries/s vs concurrent clients", note,
                 scatter(scaling, "clients", "queries/s", x_log=True, connect=True,
                         title="q/s vs clients")),
            Plot("load-p99", "Load: p99 latency vs queries/s", note,
                 scatter(tail, "queries/s", "p99 latency (ms)", y_log=True, connect=True,
                         title="p99 vs q/s"))]


def quality_vs_diversity(results: Results) -> Optional[Plot]:
    """The primary measure against intra-list similarity (`diversity:` in the config): an MMR
    lambda sweep is one line per first stage."""
    measure = primary_measure(results)
    ils = next((m for m in results.measures if m.startswith(ILS_PREFIX)), None)
    if ils is None:
        return None
    points = [Point(means[ils], means[measure], pipeline, series(results, pipeline).split("[")[0])
              for pipeline, means in results.metrics.items() if ils in means and measure in means]
    if not points:
        return None
    front = pareto_front(points, minimize_x=True)
    return Plot("diversity", f"{measure} vs {ils} (intra-list similarity)",
                f"Lower {ils} = more diverse top results. Frontier: "
                f"{', '.join(p.label for p in front)}. Up and left is better.",
                scatter(points, f"{ils} (lower = more diverse)", measure, frontier=front,
                        annotate=True, title=f"{measure} vs {ils}"))


def training_loss(results: Results) -> Optional[Plot]:
    """Each trained model's logged loss (timings.csv `train:<name>` rows `loss@<step>`; a model
    used by several pipelines repeats the same rows)."""
    curves: dict[str, dict[int, float]] = {}
    for row in results.timings:
        if row.stage.startswith("train:") and row.stat.startswith("loss@"):
            curves.setdefault(row.stage[len("train:"):], {})[int(row.stat[5:])] = row.value
    points = [Point(step, loss, f"{name}@{step}", name)
              for name, curve in curves.items() for step, loss in sorted(curve.items())]
    if not points:
        return None
    return Plot("training", "Training loss", f"Models trained by this config's `train:` section "
                f"({', '.join(curves)}): loss per logged step (one batch each, so noisy).",
                scatter(points, "training step", "loss", connect=True, title="training loss"))


def all_plots(results: Results) -> list[Plot]:
    return [p for p in (ann_pareto(results), quality_vs_latency(results),
                        quality_vs_depth(results), quality_vs_diversity(results),
                        training_loss(results))
            if p is not None] + load_curves(results)
