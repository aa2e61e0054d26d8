"""Failure attribution for a two-stage pipeline (a reranker over a first stage), per query.

Definitions, for one judged query with relevant docs R (qrels grade > 0), the first stage's
ranking F, the reranked ranking P, the rerank depth d (the whole of F when unknown) and the cut
c = 10 (top-c, in trec_eval order):
- a relevant doc is *missed* when it is not in F's top d: the reranker never saw it;
- *demoted* when it is in F's top c but not in P's top c;
- *promoted* when it is not in F's top c but is in P's top c.
A query is then in each category whose condition it meets (so it can be in several):
- retrieval miss: at least one missed relevant doc;
- rerank demotion: at least one demoted relevant doc;
- promoted: at least one promoted relevant doc;
- unchanged: no relevant doc demoted or promoted (the same relevant docs in the top c).
Judged queries without any relevant doc are counted apart and in no category.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from harness.core.types import Qrels, Run, ranked

DEFAULT_CUT = 10
CATEGORIES = ("retrieval miss", "rerank demotion", "promoted", "unchanged")


@dataclass(frozen=True)
class QueryOutcome:
    qid: str
    missed: tuple[str, ...]
    demoted: tuple[str, ...]
    promoted: tuple[str, ...]

    def categories(self) -> list[str]:
        flags = {"retrieval miss": bool(self.missed), "rerank demotion": bool(self.demoted),
                 "promoted": bool(self.promoted),
                 "unchanged": not self.demoted and not self.promoted}
        return [name for name in CATEGORIES if flags[name]]


@dataclass
class Attribution:
    pipeline: str
    parent: str
    depth: Optional[int]
    cut: int
    outcomes: list[QueryOutcome] = field(default_factory=list)
    without_relevant: list[str] = field(default_factory=list)

    def queries_by_category(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {name: [] for name in CATEGORIES}
        for outcome in self.outcomes:
            for name in outcome.categories():
                groups[name].append(outcome.qid)
        return groups


def attribute(pipeline: str, parent: str, qrels: Qrels, first_stage: Run, reranked: Run,
              depth: Optional[int] = None, cut: int = DEFAULT_CUT) -> Attribution:
    result = Attribution(pipeline, parent, depth, cut)
    for qid, judgments in qrels.items():
        relevant = [doc for doc, grade in judgments.items() if grade > 0]
        if not relevant:
            result.without_relevant.append(qid)
            continue
        first = [doc for doc, _ in ranked(first_stage.get(qid, {}))]
        seen_by_reranker = set(first if depth is None else first[:depth])
        first_top = set(first[:cut])
        final_top = {doc for doc, _ in ranked(reranked.get(qid, {}))[:cut]}
        result.outcomes.append(QueryOutcome(
            qid,
            missed=tuple(d for d in relevant if d not in seen_by_reranker),
            demoted=tuple(d for d in relevant if d in first_top and d not in final_top),
            promoted=tuple(d for d in relevant if d not in first_top and d in final_top)))
    return result
