"""`oracle`: scores each candidate by its qrels grade. It measures the best any reranker could do
with a first stage's top `depth`, and checks the rerank mechanics against that ideal.

It needs the qrels, which no config parameter can carry: the runner calls `set_qrels(qrels)` on any
reranker that is a `NeedsQrels` before `rerank`. Unjudged documents score 0; grades are used as
they are (a negative grade ranks below unjudged, which never lowers nDCG).
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

from harness.core.context import RunContext
from harness.core.errors import HarnessError
from harness.core.registry import DETERMINISTIC, Params, register
from harness.core.types import Document, Qrels
from harness.rerankers.base import Pair, PairwiseReranker


@register("reranker", "oracle", tolerance=DETERMINISTIC)
class OracleReranker(PairwiseReranker):
    """Scores by qrels grade: the ideal reranker, for checking mechanics and upper bounds."""

    def __init__(self, params: Optional[Params] = None, ctx: Optional[RunContext] = None):
        super().__init__()
        self.qrels: Optional[Qrels] = None

    def set_qrels(self, qrels: Qrels) -> None:
        self.qrels = qrels

    def score_pairs(self, pairs: list[Pair], queries: Mapping[str, str],
                    corpus: Mapping[str, Document]) -> Sequence[float]:
        if self.qrels is None:
            raise HarnessError("the oracle reranker has no qrels: call set_qrels(qrels) first")
        grades = [self.qrels.get(qid, {}).get(doc_id) for qid, doc_id in pairs]
        self.stats["unjudged_pairs"] = sum(g is None for g in grades)
        return [float(g or 0) for g in grades]

    def batch_threads(self) -> int:
        return 1  # grade look-ups in Python
