"""`mmr`: maximal marginal relevance (Carbonell & Goldstein 1998) over the top `depth`.

Greedy: the first pick is the most relevant candidate; each next pick maximises
    lambda_mult * rel(d) - (1 - lambda_mult) * max_{s in selected} cos(d, s)
(the maximum over *all* documents selected so far, not only the last one). Ties go to the
candidate ranked higher in the input, so lambda_mult = 1.0 reproduces the input ranking exactly.

Relevance: the input scores min-max normalised per query over the candidates, to [0, 1] (1 for
all when they are equal), so BM25 scores and cosines weigh against the [-1, 1] cosine penalty on
one scale whatever the first stage. Similarity: cosine of the encoder's document embeddings,
read from the embedding cache a `dense` stage with the same encoder shares (no second forward
pass; queries are not encoded at all). The output ranks the candidates in pick order with scores
depth, depth-1, ..., 1 (MMR's own objective is not monotone in pick order); documents below the
depth follow in their input order (harness.rerankers.base).
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
from pydantic import Field

from harness.core.context import RunContext
from harness.core.errors import DataError
from harness.core.registry import Params, register
from harness.core.types import Document, Run, ranked
from harness.rerankers.base import below_depth_scores
from harness.retrievers.dense import MINILM, BiEncoderRetriever, DenseParams


class MMRParams(Params):
    MODEL_FIELDS = ("model",)
    lambda_mult: float = Field(0.5, ge=0, le=1, description="relevance weight; 1.0 = input order")
    model: str = Field(MINILM, description="encoder whose cached document embeddings give the "
                       "similarities")
    batch_size: int = Field(64, ge=1)
    max_length: Optional[int] = Field(None, ge=1)
    doc_prefix: str = ""

    def dense_params(self) -> DenseParams:
        """The `dense` settings whose cache entry holds these document vectors."""
        return DenseParams(model=self.model, batch_size=self.batch_size,
                           max_length=self.max_length, normalize=True, doc_prefix=self.doc_prefix)


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, lambda_mult: float) -> list[int]:
    """Greedy MMR pick order over candidates given in input rank order (unit `vectors`)."""
    n = len(relevance)
    if n == 0:
        return []
    sims = vectors @ vectors.T
    chosen = np.zeros(n, dtype=bool)
    max_sim = np.full(n, -np.inf)
    order = [int(np.argmax(relevance))]  # argmax: the first maximum, the higher input rank
    for _ in range(n - 1):
        chosen[order[-1]] = True
        max_sim = np.maximum(max_sim, sims[:, order[-1]])
        objective = lambda_mult * relevance - (1.0 - lambda_mult) * max_sim
        objective[chosen] = -np.inf
        order.append(int(np.argmax(objective)))
    return order


def minmax(scores: np.ndarray) -> np.ndarray:
    if len(scores) == 0:
        return scores
    low, high = scores.min(), scores.max()
    return np.ones(len(scores)) if high == low else (scores - low) / (high - low)


@register("reranker", "mmr", params=MMRParams, requires=("sentence_transformers",),
          install_hint="pip install sentence-transformers")
class MMRReranker:
    """Greedy MMR over the top depth: relevance vs cosine to the documents already picked."""

    def __init__(self, params: MMRParams, ctx: Optional[RunContext] = None):
        self.params = params
        self.encoder = BiEncoderRetriever(params.dense_params(), ctx or RunContext())
        self._corpus: Optional[Mapping[str, Document]] = None
        self._rows: dict[str, int] = {}
        self._vectors: Optional[np.ndarray] = None
        self.stats: dict = {}

    def prepare(self, corpus: Mapping[str, Document]) -> None:
        if corpus is self._corpus:
            return
        _, arrays = self.encoder.document_arrays(corpus)
        self._vectors = np.asarray(arrays["vectors"], dtype=np.float32)
        self._rows = {doc_id: row for row, doc_id in enumerate(corpus)}
        self._corpus = corpus

    def rerank(self, queries: Mapping[str, str], corpus: Mapping[str, Document], run: Run,
               depth: int) -> Run:
        self.prepare(corpus)
        out: Run = {}
        for qid, docs in run.items():
            order = ranked(docs)
            head, tail = order[:depth], [d for d, _ in order[depth:]]
            unknown = [d for d, _ in head if d not in self._rows]
            if unknown:
                raise DataError(f"mmr: query {qid!r}: {len(unknown)} candidates are not in the "
                                f"corpus the embeddings were built from, e.g. {unknown[0]!r}")
            rows = np.array([self._rows[d] for d, _ in head], dtype=np.int64)
            picks = mmr_order(minmax(np.array([s for _, s in head], dtype=np.float64)),
                              self._vectors[rows].astype(np.float64), self.params.lambda_mult)
            reranked = {head[i][0]: float(len(head) - rank) for rank, i in enumerate(picks)}
            if tail:
                reranked.update(zip(tail, below_depth_scores(1.0, len(tail))))  # head's last: 1
            out[qid] = reranked
        self.stats = {"queries": len(run), "depth": depth, "lambda_mult": self.params.lambda_mult}
        return out

    def stage_stats(self) -> dict:
        kept = ("embedding_cache_hit", "encode_wall_s", "encode_peak_rss_delta_bytes")
        return {**self.stats, **{k: v for k, v in self.encoder.stats.items() if k in kept}}

    def models(self) -> dict[str, dict[str, str]]:
        return self.encoder.models()
