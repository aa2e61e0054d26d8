"""`flat`: exact inner-product search with faiss IndexFlatIP (cosine on normalised vectors)."""
from __future__ import annotations

import numpy as np

from harness.core.context import RunContext
from harness.core.registry import register
from harness.ann.base import ANNParams, check_search_params
from harness.ann.faiss_io import faiss_nbytes, faiss_selector


class FlatParams(ANNParams):
    """Exact search has no parameters."""


@register("ann", "flat", params=FlatParams, requires=("faiss",), install_hint="pip install faiss-cpu",
          exact=True)
class FlatIndex:
    """Exact inner-product search (faiss IndexFlatIP); filtered: exact over the allowed subset
    (a faiss IDSelector)."""

    name = "flat"
    FILTER_MODE = "pre"

    def __init__(self, params: FlatParams, ctx: RunContext):
        import faiss
        self._faiss = faiss
        self.params = params
        self.threads = ctx.threads
        self._index = None

    def build(self, X: np.ndarray) -> None:
        self._faiss.omp_set_num_threads(self.threads)
        self._index = self._faiss.IndexFlatIP(X.shape[1])
        self._index.add(np.ascontiguousarray(X, dtype=np.float32))

    def set_search_params(self, **params) -> None:
        check_search_params(self.name, FlatParams, params)

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # faiss pads with id -1 (score -FLT_MAX) when k exceeds the number of vectors.
        scores, ids = self._index.search(Q, k)
        return ids, scores

    def nbytes(self) -> int:
        return faiss_nbytes(self._index)

    def search_filtered(self, Q: np.ndarray, k: int, allowed) -> tuple[np.ndarray, np.ndarray]:
        params = self._faiss.SearchParameters(sel=faiss_selector(allowed))
        scores, ids = self._index.search(Q, k, params=params)
        return ids, scores
