"""`hnsw`: hnswlib graphs; `deterministic` builds with one thread and a fixed seed.

hnswlib searches with max(ef, k): a point whose `ef` is below the k asked for would measure
ef=k, so it is refused (HNSWParams.check_depth).
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal, Optional

import numpy as np
from pydantic import Field

from harness.core.context import RunContext
from harness.core.errors import ConfigError
from harness.core.registry import register
from harness.ann.base import ANNParams, Similarity, check_search_params


class HNSWParams(ANNParams):
    SEARCH_PARAMS: ClassVar[frozenset[str]] = frozenset({"ef"})
    ALIASES: ClassVar[dict[str, str]] = {"ef_construction": "efC", "deterministic": "det"}

    M: int = Field(16, ge=2, description="graph degree")
    ef_construction: int = Field(200, ge=1)
    space: Literal["ip", "cosine"] = "ip"
    threads: Optional[int] = Field(None, ge=1, description="build and batch threads; None = run's")
    deterministic: bool = Field(False, description="single-thread build with a fixed seed")
    ef: int = Field(64, ge=1, description="search candidate list size; must be >= k")

    def index_similarity(self) -> Similarity:
        return "cos" if self.space == "cosine" else "dot"

    def check_depth(self, k: int, where: str = "search") -> dict[str, Any]:
        if self.ef < k:
            raise ConfigError(f"{where}.ef: {self.ef} < k={k}; hnswlib searches with max(ef, k), "
                              f"so this point would measure ef={k}. Set k <= ef (k: 10 for an ANN "
                              f"sweep) or ef >= k")
        return super().check_depth(k, where)


@register("ann", "hnsw", params=HNSWParams, requires=("hnswlib",), install_hint="pip install hnswlib")
class HNSWIndex:
    """hnswlib HNSW graph (inner product or cosine); filtered: hnswlib's filter function, so
    the graph walk keeps going until `ef` allowed candidates are found (a pre-filter: recall
    holds at low selectivity, at the cost of visiting more of the graph)."""

    name = "hnsw"
    FILTER_MODE = "pre"

    def __init__(self, params: HNSWParams, ctx: RunContext):
        import hnswlib
        self._hnswlib = hnswlib
        self.params = params
        self.threads = params.threads or ctx.threads
        self.seed = ctx.seed
        self.deterministic = params.deterministic or ctx.deterministic
        self._index = None

    def build(self, X: np.ndarray) -> None:
        p = self.params
        n, d = X.shape
        index = self._hnswlib.Index(space=p.space, dim=d)
        index.init_index(max_elements=n, M=p.M, ef_construction=p.ef_construction,
                         random_seed=self.seed)
        # With several threads, insertion order (hence the graph) depends on scheduling.
        build_threads = 1 if self.deterministic else self.threads
        for start in range(0, n, 100_000):  # chunks: a memory-mapped X is never copied whole
            chunk = np.ascontiguousarray(X[start:start + 100_000], dtype=np.float32)
            index.add_items(chunk, np.arange(start, start + len(chunk)), num_threads=build_threads)
        index.set_num_threads(self.threads)
        index.set_ef(p.ef)
        self._index = index
        self._count = index.get_current_count()

    def set_search_params(self, **params) -> None:
        check_search_params(self.name, HNSWParams, params)
        self.params = self.params.model_copy(update=params)
        self._index.set_ef(self.params.ef)

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        count = self._count
        if k <= count:
            labels, distances = self._index.knn_query(Q, k)
            # hnswlib distances are 1 - similarity (converted in place: this is the hot path);
            # labels are uint64 row numbers.
            return labels.view(np.int64), np.subtract(1.0, distances, out=distances)
        # hnswlib refuses k > count: search what exists and pad like faiss does.
        ids = np.full((len(Q), k), -1, dtype=np.int64)
        scores = np.full((len(Q), k), -np.inf, dtype=np.float32)
        if count:
            labels, distances = self._index.knn_query(Q, count)
            ids[:, :count], scores[:, :count] = labels.view(np.int64), 1.0 - distances
        return ids, scores

    def search_filtered(self, Q: np.ndarray, k: int, allowed) -> tuple[np.ndarray, np.ndarray]:
        ids = np.full((len(Q), k), -1, dtype=np.int64)
        scores = np.full((len(Q), k), -np.inf, dtype=np.float32)
        found = min(k, allowed.size)  # hnswlib refuses to return fewer than it is asked for
        if not found or not len(Q):
            return ids, scores
        is_allowed = allowed.cache.setdefault("hnsw", allowed.mask.tolist()).__getitem__
        try:
            labels, distances = self._index.knn_query(Q, found, filter=is_allowed)
            ids[:, :found], scores[:, :found] = labels.view(np.int64), 1.0 - distances
        except RuntimeError:  # some query's walk found fewer than `found`: ask one at a time
            for row in range(len(Q)):
                try:
                    labels, distances = self._index.knn_query(Q[row:row + 1], found,
                                                              filter=is_allowed)
                except RuntimeError:
                    continue  # left empty: counted as short of k
                ids[row, :found], scores[row, :found] = labels.view(np.int64), 1.0 - distances
        return ids, scores

    def nbytes(self) -> int:
        return int(self._index.index_file_size())
