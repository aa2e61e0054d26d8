"""`annoy`: Spotify Annoy random-projection forests, metric dot or angular, seeded.

Annoy's default `search_k` (-1) inspects n_trees * k nodes, so the search depends on the run's k:
the default is resolved to that number explicitly (AnnoyParams.check_depth), passed to Annoy as
such and recorded with the point's stats (`ann_search`).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

import numpy as np
from pydantic import Field

from harness.core.context import RunContext
from harness.core.registry import register
from harness.ann.base import ANNParams, Similarity, check_search_params


class AnnoyParams(ANNParams):
    SEARCH_PARAMS: ClassVar[frozenset[str]] = frozenset({"search_k"})
    ALIASES: ClassVar[dict[str, str]] = {"n_trees": "trees", "search_k": "sk"}

    n_trees: int = Field(100, ge=1)
    metric: Literal["dot", "angular"] = "dot"
    threads: Optional[int] = Field(None, ge=1, description="build threads; None = run's")
    search_k: int = Field(-1, ge=-1, description="nodes inspected; -1 = n_trees * k")

    def index_similarity(self) -> Similarity:
        return "cos" if self.metric == "angular" else "dot"

    def check_depth(self, k: int, where: str = "search") -> dict[str, Any]:
        return {"search_k": self.n_trees * k if self.search_k == -1 else self.search_k}


# A post-filter asks Annoy for this many times k neighbours, then keeps the allowed ones.
FILTER_OVERSAMPLE = 10


@register("ann", "annoy", params=AnnoyParams, requires=("annoy",), install_hint="pip install annoy")
class AnnoyIndex:
    """Annoy forest (dot product or angular); filtered: a post-filter (Annoy has no filtered
    search): FILTER_OVERSAMPLE x k neighbours searched, the allowed ones kept, so a query whose
    allowed documents are rare gets fewer than k results."""

    name = "annoy"
    FILTER_MODE = "post"

    def __init__(self, params: AnnoyParams, ctx: RunContext):
        import annoy
        self._annoy = annoy
        self.params = params
        # Annoy's multi-threaded build depends on scheduling: one thread when asked to be exact.
        self.build_threads = 1 if ctx.deterministic else (params.threads or ctx.threads)
        self.threads = 1  # Annoy has no batch query API: batches are a loop in one thread
        self.seed = ctx.seed
        self.cache_dir = Path(ctx.cache_dir)
        self._index = None

    def build(self, X: np.ndarray) -> None:
        n, d = X.shape
        index = self._annoy.AnnoyIndex(d, self.params.metric)
        index.set_seed(self.seed)
        for i in range(n):
            index.add_item(i, X[i])
        index.build(self.params.n_trees, n_jobs=self.build_threads)
        self._index = index

    def set_search_params(self, **params) -> None:
        check_search_params(self.name, AnnoyParams, params)
        self.params = self.params.model_copy(update=params)

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        ids = np.full((len(Q), k), -1, dtype=np.int64)
        scores = np.full((len(Q), k), -np.inf, dtype=np.float32)
        query = self._index.get_nns_by_vector
        search_k = self.params.check_depth(k)["search_k"]  # what -1 means to Annoy, made explicit
        for row, q in enumerate(Q):
            found, dist = query(q, k, search_k, True)
            ids[row, :len(found)] = found
            scores[row, :len(found)] = dist
        if self.params.metric == "angular":  # Annoy returns sqrt(2 - 2 cos); give back cos
            valid = ids >= 0
            scores[valid] = 1.0 - scores[valid] ** 2 / 2.0
        return ids, scores

    def search_filtered(self, Q: np.ndarray, k: int, allowed) -> tuple[np.ndarray, np.ndarray]:
        wide, wide_scores = self.search(Q, k * FILTER_OVERSAMPLE)
        ids = np.full((len(Q), k), -1, dtype=np.int64)
        scores = np.full((len(Q), k), -np.inf, dtype=np.float32)
        for row in range(len(Q)):
            keep = wide[row] >= 0
            keep[keep] = allowed.mask[wide[row][keep]]
            kept = np.flatnonzero(keep)[:k]
            ids[row, :len(kept)], scores[row, :len(kept)] = wide[row, kept], wide_scores[row, kept]
        return ids, scores

    def nbytes(self) -> int:
        # Annoy serialises only to a file. save() re-opens the index from that file by mmap; on
        # POSIX the mapping stays valid after the unlink, so searches keep working.
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(suffix=".annoy", dir=self.cache_dir)
        os.close(fd)
        try:
            self._index.save(path)
            return os.path.getsize(path)
        finally:
            os.unlink(path)
