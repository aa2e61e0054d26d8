"""`ivf`: faiss inverted-file indexes, IVF-Flat (pq_m None) or IVF-PQ, inner-product metric."""
from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np
from pydantic import Field

from harness.core.context import RunContext
from harness.core.errors import ConfigError
from harness.core.registry import register
from harness.ann.base import ANNParams, check_search_params
from harness.ann.faiss_io import faiss_nbytes, faiss_selector


class IVFParams(ANNParams):
    SEARCH_PARAMS: ClassVar[frozenset[str]] = frozenset({"nprobe"})
    ALIASES: ClassVar[dict[str, str]] = {"train_size": "train"}

    nlist: int = Field(1024, ge=1, description="number of inverted lists (k-means centroids)")
    pq_m: Optional[int] = Field(None, ge=1, description="PQ sub-quantizers; None = IVF-Flat")
    nbits: int = Field(8, ge=1, le=16, description="bits per PQ code")
    train_size: Optional[int] = Field(None, ge=1, description="training sample; None = all vectors")
    nprobe: int = Field(1, ge=1, description="lists visited per query")


@register("ann", "ivf", params=IVFParams, requires=("faiss",), install_hint="pip install faiss-cpu")
class IVFIndex:
    """faiss IVF-Flat / IVF-PQ (inner product); filtered: a faiss IDSelector checked while the
    `nprobe` lists are scanned (a pre-filter within the probed lists: at low selectivity they
    may hold fewer than k allowed vectors)."""

    name = "ivf"
    FILTER_MODE = "pre"

    def __init__(self, params: IVFParams, ctx: RunContext):
        import faiss
        self._faiss = faiss
        self.params = params
        self.threads = ctx.threads
        self.seed = ctx.seed
        self._index = None

    def build(self, X: np.ndarray) -> None:
        faiss, p = self._faiss, self.params
        n, d = X.shape
        if p.nlist > n:
            raise ConfigError(f"ann ivf: nlist={p.nlist} exceeds the {n} vectors to index")
        if p.pq_m is not None and d % p.pq_m:
            raise ConfigError(f"ann ivf: pq_m={p.pq_m} must divide the dimension {d}")
        faiss.omp_set_num_threads(self.threads)
        quantizer = faiss.IndexFlatIP(d)
        if p.pq_m is None:
            index = faiss.IndexIVFFlat(quantizer, d, p.nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFPQ(quantizer, d, p.nlist, p.pq_m, p.nbits,
                                     faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = self.seed  # k-means initialisation
        if hasattr(index, "pq"):
            index.pq.cp.seed = self.seed
        index.train(self._training_sample(X))
        for start in range(0, n, 100_000):  # chunks: a memory-mapped X is never copied whole
            index.add(np.ascontiguousarray(X[start:start + 100_000], dtype=np.float32))
        index.nprobe = p.nprobe
        self._quantizer, self._index = quantizer, index  # the index does not own its quantizer

    def _training_sample(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        size = self.params.train_size
        if size is None or size >= n:
            return np.ascontiguousarray(X, dtype=np.float32)
        rows = np.sort(np.random.default_rng(self.seed).choice(n, size=size, replace=False))
        return np.ascontiguousarray(X[rows], dtype=np.float32)

    def set_search_params(self, **params) -> None:
        check_search_params(self.name, IVFParams, params)
        self.params = self.params.model_copy(update=params)
        self._index.nprobe = self.params.nprobe

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._index.search(Q, k)
        return ids, scores

    def search_filtered(self, Q: np.ndarray, k: int, allowed) -> tuple[np.ndarray, np.ndarray]:
        params = self._faiss.SearchParametersIVF(sel=faiss_selector(allowed),
                                                 nprobe=self.params.nprobe)
        scores, ids = self._index.search(Q, k, params=params)
        return ids, scores

    def nbytes(self) -> int:
        return faiss_nbytes(self._index)
