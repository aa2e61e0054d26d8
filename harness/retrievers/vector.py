"""Shared machinery of every embedding retriever (bi-encoder, DPR): cached document vectors,
an ANN index built once per build point, and queries encoded live (their encoding is part of the
measured query latency, so caching them would make warm-run timings dishonest)."""
from __future__ import annotations

from typing import Any, Dict, Mapping

import numpy as np
from pydantic import Field

from harness.core import registry
from harness.core.context import RunContext
from harness.storage.embedding_cache import EmbeddingCache
from harness.evaluation.timing import PeakRSSDelta, time_call
from harness.core.protocols import Serializable
from harness.core.hashing import stable_hash, texts_hash
from harness.core.registry import Params
from harness.core.types import Document, Run
from harness.storage.results_folder import layout as L


class IndexSpec(Params):
    """One ANN point: a backend with its build parameters and its search parameters."""

    type: str = "flat"
    build: Dict[str, Any] = Field(default_factory=dict)
    search: Dict[str, Any] = Field(default_factory=dict)

    def backend_params(self):
        plugin = registry.get("ann", self.type)
        return plugin, plugin.params(**self.build, **self.search)

    def resolved(self) -> dict:
        """Backend defaults filled in: `{type: hnsw}` and `{type: hnsw, search: {ef: 64}}` are
        one index."""
        _, params = self.backend_params()
        data = params.resolved()
        return {"type": self.type,
                "build": {f: data[f] for f in params.build_fields()},
                "search": {f: data[f] for f in params.search_fields()}}

    def tolerance_class(self, declared: str) -> str:
        plugin, _ = self.backend_params()
        return declared if plugin.exact else registry.ANN


INDEX_SLOT = "ann_index"


def _build_index(spec: IndexSpec, vectors: np.ndarray, vectors_key: str,
                 ctx: RunContext) -> tuple[Any, dict]:
    """The index of `spec`'s build point over `vectors`, with the stats of its build.

    The run's memo (ctx.memo) holds the index built last with its stats: consecutive sweep
    points of one build point search that one index, and each reports the build of the index it
    searches, whichever point built it.
    """
    key = stable_hash({"vectors": vectors_key, "type": spec.type,
                       "build": spec.resolved()["build"]})
    held = ctx.memo.get(INDEX_SLOT, key)
    if held is not None:
        return held
    plugin, params = spec.backend_params()
    index = plugin.factory(params, ctx)
    with PeakRSSDelta() as rss:
        _, seconds = time_call(lambda: index.build(np.ascontiguousarray(vectors, dtype=np.float32)))
    stats = {"ann_build_wall_s": seconds, "ann_peak_rss_delta_bytes": rss.delta_bytes}
    if isinstance(index, Serializable):
        stats["size_bytes"] = index.nbytes()
    if hasattr(index, "build_stats"):  # a database backend: ingest and index build apart, ...
        stats.update(index.build_stats())
    ctx.memo.put(INDEX_SLOT, key, (index, stats))
    return index, stats


class VectorRetriever:
    """Subclasses provide the encoders; this class does caching, indexing and search."""

    similarity = "cos"   # or "dot": decides which ANN metrics are allowed
    normalized = True    # vectors have unit length (then every ANN metric ranks alike)
    FILTER_MODE = "index"  # filters are applied by the ANN backend (harness.filters.support)

    def __init__(self, index_spec: IndexSpec, ctx: RunContext):
        self.ctx = ctx
        self.index_spec = index_spec
        _, self._ann_params = index_spec.backend_params()
        # Every search parameter, defaults included: an index shared with another point (the
        # memo) keeps whatever that point set last.
        self._search_params = index_spec.resolved()["search"]
        self._checked_depth: int | None = None
        self.cache = EmbeddingCache(ctx.cache_dir, ctx.memo)
        self.stats: dict = {}
        self._doc_ids: list[str] = []
        self._vectors: np.ndarray | None = None
        self._index = None
        self._last_batch: tuple[list[str], np.ndarray, np.ndarray] | None = None  # qids, Q, ids
        self._last_allowed: dict | None = None  # the last batch's allowed sets when filtered

    # -- implemented by subclasses -------------------------------------------------------------
    def encoder_key(self) -> dict:
        """Everything about the document encoder that changes its vectors (model hash, length...)."""
        raise NotImplementedError

    def encode_documents(self, texts: list[str]) -> Dict[str, np.ndarray]:
        """Returns at least {"vectors": (n, d) float32}."""
        raise NotImplementedError

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------
    def required_arrays(self) -> tuple[str, ...]:
        return ("vectors",)

    def document_arrays(self, corpus: Mapping[str, Document]) -> tuple[str, Dict[str, np.ndarray]]:
        ids = list(corpus)
        texts = [corpus[d].full_text for d in ids]
        key = stable_hash({"encoder": self.encoder_key(), "corpus": texts_hash(ids, texts)})
        entry = self.cache.get_or_compute(key, lambda: self.encode_documents(texts),
                                          {"what": "documents", "n": len(ids),
                                           "encoder": self.encoder_key()},
                                          required=self.required_arrays())
        # The encoding's cost as measured when it ran: a cache hit reports the same numbers.
        self.stats.update(embedding_cache_hit=float(entry.hit),
                          encode_wall_s=entry.cost["wall_s"],
                          encode_peak_rss_delta_bytes=entry.cost["peak_rss_delta_bytes"])
        return key, entry.arrays

    def index(self, corpus: Mapping[str, Document]) -> None:
        from harness.ann.base import check_metric
        check_metric(self._ann_params, self.normalized, self.similarity)
        key, arrays = self.document_arrays(corpus)
        self._doc_ids = list(corpus)
        self._vectors = arrays["vectors"]
        self._index, build = _build_index(self.index_spec, self._vectors, key, self.ctx)
        # The index stage's build rows are the recorded cost of this point's index from the
        # documents: encoding plus the ANN build of the index it searches. They replace the
        # runner's clock around index(), which sees only what this process happened to do (an
        # encode on a cache miss, a build on the first point of a build point).
        # An ONNX export of the encoder (inference_backends) is part of that cost too.
        wall_s = (self.stats["encode_wall_s"] + build["ann_build_wall_s"]
                  + self.stats.get("backend_build_wall_s", 0.0))
        self.stats.update(build, wall_s=wall_s,
                          peak_rss_delta_bytes=max(self.stats["encode_peak_rss_delta_bytes"],
                                                   build["ann_peak_rss_delta_bytes"]))

    def _depth(self, k: int) -> int:
        """The depth the index is searched at, refused if the backend would search it with other
        parameters than configured (checked at config time too); what it uses is recorded."""
        depth = min(k, len(self._doc_ids))
        if depth != self._checked_depth:
            self.stats["ann_search_params"] = self._ann_params.check_depth(depth, "index.search")
            self._checked_depth = depth
        return depth

    def search(self, queries: Mapping[str, str], k: int) -> Run:
        from harness.ann.sweep import faiss_threads
        qids = list(queries)
        depth = self._depth(k)
        vectors = np.ascontiguousarray(self.encode_queries([queries[q] for q in qids]),
                                       dtype=np.float32)
        self._index.set_search_params(**self._search_params)
        # One query: one engine thread (an OpenMP team per query stalls on a busy machine).
        with faiss_threads(self.ctx.threads if len(qids) > 1 else 1):
            ids, scores = self._index.search(vectors, depth)
        if len(qids) > 1:
            self._last_batch, self._last_k, self._last_allowed = (qids, vectors, ids), k, None
        return self._to_run(qids, ids, scores)

    def _to_run(self, qids: list[str], ids: np.ndarray, scores: np.ndarray) -> Run:
        run: Run = {}
        for qid, row_ids, row_scores in zip(qids, ids, scores):
            run[qid] = {self._doc_ids[i]: float(s) for i, s in zip(row_ids, row_scores) if i >= 0}
        return run

    def search_filtered(self, queries: Mapping[str, str], k: int, allowed) -> Run:
        """Search each query among its allowed documents only (`allowed`: qid -> AllowedSet),
        one backend call per distinct set; the backend's FILTER_MODE says how."""
        from harness.ann.sweep import faiss_threads
        from harness.filters.allowed import by_set
        qids = list(queries)
        depth = self._depth(k)
        vectors = np.ascontiguousarray(self.encode_queries([queries[q] for q in qids]),
                                       dtype=np.float32)
        row = {q: i for i, q in enumerate(qids)}
        ids = np.full((len(qids), depth), -1, dtype=np.int64)
        scores = np.full((len(qids), depth), -np.inf, dtype=np.float32)
        self._index.set_search_params(**self._search_params)
        with faiss_threads(self.ctx.threads if len(qids) > 1 else 1):
            for subset, members in by_set(allowed):
                rows = [row[q] for q in members]
                ids[rows], scores[rows] = self._index.search_filtered(vectors[rows], depth, subset)
        if len(qids) > 1:
            self._last_batch, self._last_k = (qids, vectors, ids), k
            self._last_allowed = dict(allowed)
        return self._to_run(qids, ids, scores)

    def stage_stats(self) -> dict:
        return dict(self.stats)

    def batch_threads(self) -> int:
        """Query encoding runs on the run's threads, the index search on the backend's own
        (Annoy: one; hnswlib: its `threads` parameter)."""
        return max(self.ctx.threads, getattr(self._index, "threads", self.ctx.threads))

    def extra_measures(self, run: Run, cutoff: int = 10) -> dict[str, dict[str, float]]:
        """Per-query recall@c of the last batch, c = min(cutoff, k, documents): its first c
        results against the exact top c on the same vectors (ties with the c-th exact neighbour
        count as hits), named after c (`ann_recall@5` when k=5): 1.0 for `flat` at any k."""
        if self._last_batch is None:
            return {}
        from harness.ann.recall import ann_recall, exact_neighbours, filtered_exact_neighbours
        qids, Q, ids = self._last_batch
        c = min(cutoff, self._last_k, len(self._doc_ids))
        if self._last_allowed is None:
            exact_ids, exact_scores = exact_neighbours(self._vectors, Q, c)
        else:  # filter-aware: the truth is the exact top c among each query's allowed documents
            exact_ids, exact_scores = filtered_exact_neighbours(
                self._vectors, Q, c, [self._last_allowed[q].rows for q in qids])
        recall = ann_recall(ids, self._vectors, Q, exact_ids, exact_scores, c)
        return {f"ann_recall@{c}": dict(zip(qids, map(float, recall)))}

    def substage_timings(self, queries: Mapping[str, str], k: int, latency_qids: list[str],
                         warmup: int) -> list[tuple[str, str, str, float]]:
        """The index search alone, on query vectors encoded beforehand (untimed): stage
        `ann_search`, batch and single-query, one engine thread for single queries."""
        from harness.ann.sweep import measure_search
        qids = list(queries)
        Q = np.ascontiguousarray(self.encode_queries([queries[q] for q in qids]), dtype=np.float32)
        row = {q: i for i, q in enumerate(qids)}
        singles = [Q[row[q]:row[q] + 1] for q in latency_qids]  # sliced outside the timing
        self._index.set_search_params(**self._search_params)
        m = measure_search(self._index, Q, self._depth(k), singles, warmup, self.ctx.threads)
        rows = [(L.ANN_SEARCH, L.BATCH, L.WALL_S, m.batch_s),
                (L.ANN_SEARCH, L.BATCH, L.QPS, m.batch_qps),
                (L.ANN_SEARCH, L.BATCH, L.THREADS, m.threads)]  # Annoy: 1, whatever the run
        if m.latency is not None:
            rows += [(L.ANN_SEARCH, L.SINGLE, s, v) for s, v in m.latency.as_stats().items()]
        return rows

    def result_flags(self) -> dict[str, int]:
        """Queries of the last batch whose index results were short of k, over k, or repeated an
        id (the run, a dict, cannot show repeats: they are counted here, before it is built)."""
        if self._last_batch is None:
            return {}
        from harness.ann.recall import result_flags
        qids, _, ids = self._last_batch
        k = min(self._last_k, len(self._doc_ids))
        if self._last_allowed is None:
            return result_flags(ids, k)
        # Under a filter a query is short when it got fewer than min(k, documents it allows).
        flags: dict[str, int] = {}
        for row, qid in enumerate(qids):
            one = result_flags(ids[row:row + 1], min(k, self._last_allowed[qid].size))
            flags = {f: flags.get(f, 0) + n for f, n in one.items()}
        return flags
