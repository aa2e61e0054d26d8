"""Rerank mechanics every pointwise reranker shares.

For each query the top `depth` documents of the input run (in trec_eval order: score desc, doc id
desc) are re-scored; the output ranking is
1. those `depth` documents by their new score (ties: doc id descending), then
2. every document below the depth, in its original relative order.
Unlike BEIR, which drops the documents below the depth, the output keeps the input's length, so
recall at cut-offs beyond the depth is unchanged. The reranked documents keep the scorer's scores;
the below-depth documents get new, strictly decreasing scores under the lowest reranked score
(see `below_depth_scores`), so ranking the output by (score desc, doc id desc) reproduces exactly
this order, whatever the original scores were.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Optional, Sequence

from harness.core.errors import DataError, HarnessError
from harness.core.types import Document, Run, ranked

Pair = tuple[str, str]  # (query id, doc id)
PairScorer = Callable[[list[Pair]], Sequence[float]]


def below_depth_scores(lowest_reranked: float, n: int) -> list[float]:
    """n strictly decreasing scores, each below `lowest_reranked`.

    The step grows with the magnitude so that it is never lost to float rounding.
    """
    step = max(1.0, abs(lowest_reranked) * 2.0 ** -20)
    return [lowest_reranked - step * (i + 1) for i in range(n)]


def rerank_run(run: Run, depth: int, score_pairs: PairScorer) -> Run:
    """Apply the module's rerank rule to every query, scoring all queries' pairs in one call
    (so a batching scorer fills batches across query boundaries)."""
    if depth < 1:
        raise ValueError(f"rerank depth must be >= 1, got {depth}")
    orders = {qid: ranked(docs) for qid, docs in run.items()}
    pairs = [(qid, doc_id) for qid, order in orders.items() for doc_id, _ in order[:depth]]
    scores = [float(s) for s in score_pairs(pairs)] if pairs else []
    if len(scores) != len(pairs):
        raise HarnessError(f"reranker returned {len(scores)} scores for {len(pairs)} pairs")
    for (qid, doc_id), score in zip(pairs, scores):
        if not math.isfinite(score):
            raise DataError(f"reranker gave query {qid!r}, doc {doc_id!r} the score {score!r}; "
                            "scores must be finite")
    new_scores = iter(scores)
    out: Run = {}
    for qid, order in orders.items():
        head = {doc_id: next(new_scores) for doc_id, _ in order[:depth]}
        tail = [doc_id for doc_id, _ in order[depth:]]
        reranked = dict(head)
        if tail:
            reranked.update(zip(tail, below_depth_scores(min(head.values()), len(tail))))
        out[qid] = reranked
    return out


class PairwiseReranker:
    """A `Reranker` (harness.core.protocols) that scores each (query, document) pair on its own.

    Subclasses implement `score_pairs`. `stats` holds the last rerank call's counters;
    `stage_stats` (harness.core.protocols.Reports) returns them, plus what a subclass counts for the
    record only, after the timed call: `last_call` keeps what it needs for that.
    """

    def __init__(self) -> None:
        self.stats: dict = {}
        self.last_call: Optional[tuple[list[Pair], Mapping[str, str],
                                       Mapping[str, Document]]] = None  # (pairs, queries, corpus)

    def score_pairs(self, pairs: list[Pair], queries: Mapping[str, str],
                    corpus: Mapping[str, Document]) -> Sequence[float]:
        raise NotImplementedError

    def rerank(self, queries: Mapping[str, str], corpus: Mapping[str, Document], run: Run,
               depth: int) -> Run:
        self.stats, self.last_call = {}, None  # per call: a depth sweep reuses one instance
        missing = [qid for qid in run if qid not in queries]
        if missing:
            raise DataError(f"rerank: {len(missing)} run queries have no text, e.g. {missing[0]!r}")

        def score(pairs: list[Pair]) -> Sequence[float]:
            unknown = [doc_id for _, doc_id in pairs if doc_id not in corpus]
            if unknown:
                raise DataError(f"rerank: {len(unknown)} candidate docs are not in the corpus, "
                                f"e.g. {unknown[0]!r}")
            self.stats.update(pairs=len(pairs), queries=len(run), depth=depth)
            self.last_call = (pairs, queries, corpus)
            return self.score_pairs(pairs, queries, corpus)

        return rerank_run(run, depth, score)

    def stage_stats(self) -> dict:
        return dict(self.stats)
