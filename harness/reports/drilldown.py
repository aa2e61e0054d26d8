"""Per-query views that need the TREC runs: pair drill-downs and failure attribution.

Runs can be large (queries × k lines per pipeline), so each is read once and cut to the depth
the report needs before the next one is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from harness.storage.results_folder import Results
from harness.core.types import Run, top_k
from harness.reports.attribution import DEFAULT_CUT, Attribution, attribute

TOP_SHOWN = 5          # results listed per query in a drill-down
CHANGED_SHOWN = 10     # queries listed per pair


class RunCache:
    """Runs cut to the largest depth asked for so far (None = uncut)."""

    def __init__(self, results: Results):
        self.results = results
        self._runs: dict[str, tuple[Optional[int], Run]] = {}

    def get(self, pipeline: str, depth: Optional[int]) -> Optional[Run]:
        cached = self._runs.get(pipeline)
        if cached and (cached[0] is None or (depth is not None and depth <= cached[0])):
            return cached[1]
        run = self.results.run(pipeline)
        if run is None:
            return None
        run = run if depth is None else top_k(run, depth)
        self._runs[pipeline] = (depth, run)
        return run

    def missing(self, pipeline: str) -> str:
        """Why `get` found no run for the pipeline, in words."""
        path = self.results.run_file(pipeline)
        if path is None:
            return f"{pipeline} (metadata.json records no run_file)"
        return f"{pipeline} ({path.relative_to(self.results.path)} is not in the folder)"


@dataclass(frozen=True)
class Hit:
    doc_id: str
    title: str
    grade: Optional[int]   # qrels grade; None when unjudged


@dataclass(frozen=True)
class ChangedQuery:
    qid: str
    text: str
    value_a: float
    value_b: float
    hits_a: list[Hit]
    hits_b: list[Hit]
    n_relevant: Optional[int]


@dataclass
class PairView:
    a: str
    b: str
    measure: str
    queries: list[ChangedQuery]
    missing_runs: list[str]


def pair_view(results: Results, runs: RunCache, a: str, b: str, measure: str) -> PairView:
    """The queries whose `measure` changed most from a to b (largest |b - a| first)."""
    values_a = results.per_query.get(a, {}).get(measure, {})
    values_b = results.per_query.get(b, {}).get(measure, {})
    common = [q for q in values_a if q in values_b]
    changed = sorted(common, key=lambda q: (-abs(values_b[q] - values_a[q]), q))
    changed = [q for q in changed if values_b[q] != values_a[q]][:CHANGED_SHOWN]
    run_a, run_b = runs.get(a, DEFAULT_CUT), runs.get(b, DEFAULT_CUT)
    qrels = results.qrels or {}
    view = PairView(a, b, measure, [],
                    [runs.missing(p) for p, r in ((a, run_a), (b, run_b)) if r is None])
    for qid in changed:
        judged = qrels.get(qid, {})
        view.queries.append(ChangedQuery(
            qid, results.queries.get(qid, ""), values_a[qid], values_b[qid],
            _hits(run_a, qid, judged, results.titles), _hits(run_b, qid, judged, results.titles),
            sum(1 for g in judged.values() if g > 0) if results.qrels is not None else None))
    return view


def _hits(run: Optional[Run], qid: str, judged: dict, titles: dict) -> list[Hit]:
    if run is None:
        return []
    ranked_docs = top_k({qid: run.get(qid, {})}, TOP_SHOWN)[qid]
    return [Hit(doc, titles.get(doc, ""), judged.get(doc)) for doc in ranked_docs]


def attributions(results: Results, runs: RunCache) -> tuple[list[Attribution], list[str]]:
    """Attribution for every two-stage pipeline with metrics, and notes on what was skipped."""
    out, notes = [], []
    two_stage = [info for name, info in results.pipelines.items()
                 if info.parent and name in results.metrics]
    if two_stage and results.qrels is None:
        return [], ["qrels.tsv is not in the results folder: failure attribution needs judgments."]
    for info in two_stage:
        first = runs.get(info.parent, info.rerank_depth)
        final = runs.get(info.name, DEFAULT_CUT)
        if first is None or final is None:
            notes.append(f"{info.name}: no run for "
                         f"{runs.missing(info.parent if first is None else info.name)}.")
            continue
        out.append(attribute(info.name, info.parent, results.qrels, first, final,
                             info.rerank_depth))
    return out, notes
