"""`maxsim`: exact late-interaction (ColBERT-style MaxSim) rerank over the token embeddings of any
sentence-transformers / HF encoder (offline: all-MiniLM-L6-v2's per-token outputs).

Document token embeddings come from the `dense` retriever's embedding-cache entry: the reranker
builds the `dense` retriever, asking for tokens, with the same model, max length,
normalisation and document prefix. So when a `dense` first stage uses the same encoder with `need_tokens=True`,
every document passes through the encoder once per run (pooled and token embeddings from one
forward pass) and a later run encodes nothing. Query token embeddings are computed live: they are
part of the measured query latency.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
from pydantic import Field

from harness.core.context import RunContext
from harness.core.errors import DataError
from harness.core.inference_backends import BACKEND_DESCRIPTION, DEFAULT_BACKEND, Backend
from harness.retrievers.late_interaction import inverse_norms, maxsim_scores
from harness.core.registry import Params, register
from harness.retrievers.dense import MINILM, BiEncoderRetriever, DenseParams, token_encoder_key
from harness.core.types import Document
from harness.rerankers.base import Pair, PairwiseReranker


class MaxSimParams(Params):
    MODEL_FIELDS = ("model",)
    KEYED_UNLESS_DEFAULT = ("backend",)
    model: str = Field(MINILM, description="hub id or local folder of a token encoder")
    batch_size: int = Field(64, ge=1)
    max_length: Optional[int] = Field(None, ge=1, description="tokens; None = the model's own")
    normalize: bool = Field(True, description="L2-normalise token vectors (as ColBERT does); "
                            "also the `normalize` of the dense entry whose cache it shares")
    query_prefix: str = ""
    doc_prefix: str = ""
    backend: Backend = Field(DEFAULT_BACKEND, description=BACKEND_DESCRIPTION + "; documents and "
                             "queries alike (the shared dense entry is per backend)")

    def token_encoder(self) -> tuple:
        return token_encoder_key(self)


def shared_dense_params(params: MaxSimParams) -> DenseParams:
    """The `dense` parameters whose document cache entry holds this reranker's token embeddings."""
    return DenseParams(model=params.model, batch_size=params.batch_size,
                       max_length=params.max_length, normalize=params.normalize,
                       query_prefix=params.query_prefix, doc_prefix=params.doc_prefix,
                       backend=params.backend)


@register("reranker", "maxsim", params=MaxSimParams, requires=("sentence_transformers",),
          install_hint="pip install sentence-transformers")
class MaxSimReranker(PairwiseReranker):
    """Exact MaxSim rerank over an encoder's token embeddings (documents cached, queries live)."""

    def __init__(self, params: MaxSimParams, ctx: Optional[RunContext] = None):
        super().__init__()
        self.params = params
        self.encoder = BiEncoderRetriever(shared_dense_params(params), ctx or RunContext(),
                                          need_tokens=True)
        self._corpus: Optional[Mapping[str, Document]] = None
        self._rows: dict[str, int] = {}
        self._arrays: dict[str, np.ndarray] = {}

    @property
    def forward_passes(self) -> int:
        """Documents this reranker encoded (0 when the shared cache entry already had them)."""
        return self.encoder.forward_passes

    def prepare(self, corpus: Mapping[str, Document]) -> None:
        """Load (or encode once) the corpus's token embeddings; later calls with the same corpus
        object are free, so per-query rerank calls never touch the disk."""
        if corpus is self._corpus:
            return
        _, arrays = self.encoder.document_arrays(corpus)
        self._arrays = {"token_vectors": arrays["token_vectors"],
                        "token_offsets": arrays["token_offsets"]}
        if self.params.normalize:
            self._arrays["inverse_norms"] = inverse_norms(arrays["token_vectors"])
        self._rows = {doc_id: row for row, doc_id in enumerate(corpus)}
        self._corpus = corpus  # held, so its id cannot be reused by another object

    def encode_query_tokens(self, texts: list[str]) -> list[np.ndarray]:
        """Per query, its token embeddings (m_i, d) float32, padding positions dropped."""
        return self.encoder.forward([self.params.query_prefix + t for t in texts], tokens=True)[1]

    def score_pairs(self, pairs: list[Pair], queries: Mapping[str, str],
                    corpus: Mapping[str, Document]) -> Sequence[float]:
        self.prepare(corpus)
        unknown = [doc_id for _, doc_id in pairs if doc_id not in self._rows]
        if unknown:
            raise DataError(f"maxsim: {len(unknown)} candidates are not in the corpus the token "
                            f"embeddings were built from, e.g. {unknown[0]!r}")
        by_query: dict[str, list[int]] = {}
        for position, (qid, _) in enumerate(pairs):
            by_query.setdefault(qid, []).append(position)
        qids = list(by_query)
        query_tokens = self.encode_query_tokens([queries[q] for q in qids])
        scores = np.zeros(len(pairs), dtype=np.float64)
        for qid, tokens in zip(qids, query_tokens):
            positions = by_query[qid]
            rows = np.array([self._rows[pairs[p][1]] for p in positions], dtype=np.int64)
            scores[positions] = maxsim_scores(tokens, self._arrays["token_vectors"],
                                              self._arrays["token_offsets"], rows,
                                              normalize=self.params.normalize,
                                              token_inverse_norms=self._arrays.get("inverse_norms"))
        self.stats.update(model=self.params.model, document_forward_passes=self.forward_passes,
                          embedding_cache_hit=self.encoder.stats.get("embedding_cache_hit", 0.0))
        return scores.tolist()

    def stage_stats(self) -> dict:
        """The last rerank call's counters, the documents the encoder truncated, and the set-up's
        cost as recorded when the token embeddings were encoded: `wall_s` is that encode time
        whether this run encoded or hit the cache (as a dense index's build rows)."""
        kept = ("max_length", "truncated_docs", "longest_doc_tokens", "embedding_cache_hit",
                "encode_wall_s", "encode_peak_rss_delta_bytes")
        encoder = {k: v for k, v in self.encoder.stats.items()
                   if k in kept or k.startswith(("backend", "onnx_"))}
        if "encode_wall_s" in encoder:
            encoder["wall_s"] = encoder["encode_wall_s"] + encoder.get("backend_build_wall_s", 0.0)
        return {**super().stage_stats(), **encoder}

    def models(self) -> dict[str, dict[str, str]]:
        return self.encoder.models()
