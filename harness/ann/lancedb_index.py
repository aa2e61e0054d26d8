"""`lancedb`: LanceDB tables on disk (embedded, no server) as an ANN backend: IVF_PQ, IVF_HNSW_SQ
or an exact scan. Each index is a table in a folder under the harness cache dir keyed by the
vectors and the build parameters (rebuilt on every build: its time is measured, never cached).
Queries go through LanceDB's query builder one at a time, so latency includes its per-query
planning, as a client of an embedded database sees it.
"""
from __future__ import annotations

import hashlib
import shutil
from typing import Any, ClassVar, Literal, Optional

import numpy as np
from pydantic import Field

from harness.core.context import RunContext
from harness.core.errors import ConfigError
from harness.core.hashing import stable_hash
from harness.core.registry import register
from harness.ann.base import ANNParams, Similarity, check_search_params

# LanceDB trains IVF k-means on up to 256 rows per partition and warns (then degrades) below that.
ROWS_PER_PARTITION = 256


class LanceDBParams(ANNParams):
    SEARCH_PARAMS: ClassVar[frozenset[str]] = frozenset({"nprobes", "ef", "refine_factor"})
    ALIASES: ClassVar[dict[str, str]] = {"ef_construction": "efC", "partitions": "parts",
                                         "sub_vectors": "subv", "refine_factor": "refine"}

    kind: Literal["ivf_pq", "ivf_hnsw_sq", "exact"] = "ivf_pq"
    partitions: int = Field(8, ge=1, description="IVF partitions; <= vectors/256")
    sub_vectors: Optional[int] = Field(None, ge=1, description="ivf_pq: PQ sub-vectors (divides d); "
                                                               "None = LanceDB's d/16 or d/8")
    m: int = Field(20, ge=2, description="ivf_hnsw_sq: graph degree")
    ef_construction: int = Field(300, ge=1, description="ivf_hnsw_sq: build candidate list")
    metric: Literal["dot", "cosine"] = "dot"
    nprobes: int = Field(20, ge=1, description="partitions searched per query")
    ef: int = Field(64, ge=1, description="ivf_hnsw_sq: search candidate list; >= k x refine")
    refine_factor: Optional[int] = Field(None, ge=1, description="re-rank k x this candidates on "
                                                                 "the full vectors; None = off")

    def index_similarity(self) -> Similarity:
        return "cos" if self.metric == "cosine" else "dot"

    def check_depth(self, k: int, where: str = "search") -> dict[str, Any]:
        if self.kind == "ivf_hnsw_sq" and self.ef < k * (self.refine_factor or 1):
            raise ConfigError(f"{where}.ef: {self.ef} < k x refine_factor = "
                              f"{k * (self.refine_factor or 1)}; LanceDB's HNSW then returns fewer "
                              f"candidates than it re-ranks. Set ef >= k x refine_factor")
        if self.kind != "exact" and self.nprobes > self.partitions:
            raise ConfigError(f"{where}.nprobes: {self.nprobes} > partitions={self.partitions}")
        used = {"ivf_pq": ("nprobes", "refine_factor"),
                "ivf_hnsw_sq": ("nprobes", "ef", "refine_factor"), "exact": ()}[self.kind]
        return {f: getattr(self, f) for f in used}


@register("ann", "lancedb", params=LanceDBParams, requires=("lancedb",),
          install_hint="pip install 'retrieval-harness[lancedb]'")
class LanceDBIndex:
    """LanceDB on disk: IVF_PQ, IVF_HNSW_SQ or exact scan; filtered: LanceDB's prefilter
    (`where("id IN (...)", prefilter=True)`): the index is searched among the allowed rows only."""

    name = "lancedb"
    FILTER_MODE = "pre"
    threads = 1  # one query at a time through the query builder

    def __init__(self, params: LanceDBParams, ctx: RunContext):
        import lancedb
        self._lancedb = lancedb
        self.params = params
        self.ctx = ctx
        self._table = None

    def build(self, X: np.ndarray) -> None:
        import pyarrow as pa
        from lancedb.index import HnswSq, IvfPq
        p = self.params
        n, d = X.shape
        if p.kind != "exact" and p.partitions * ROWS_PER_PARTITION > n:
            raise ConfigError(f"ann lancedb: partitions={p.partitions} needs >= "
                              f"{p.partitions * ROWS_PER_PARTITION} vectors ({ROWS_PER_PARTITION} "
                              f"per partition for LanceDB's k-means) but there are {n}; use "
                              f"partitions <= {max(1, n // ROWS_PER_PARTITION)}")
        if p.kind == "ivf_pq" and p.sub_vectors and d % p.sub_vectors:
            raise ConfigError(f"ann lancedb: sub_vectors={p.sub_vectors} must divide the dimension {d}")
        X = np.ascontiguousarray(X, dtype=np.float32)
        key = stable_hash({"vectors": hashlib.sha256(X.tobytes()).hexdigest(), "shape": X.shape,
                           "build": {f: getattr(p, f) for f in p.build_fields()}})
        self.path = self.ctx.cache_path("lancedb", key[:24])
        shutil.rmtree(self.path, ignore_errors=True)  # a stale or partial table of this key
        self.dim = d
        db = self._lancedb.connect(str(self.path))
        data = pa.table({"id": pa.array(np.arange(n, dtype=np.int32)),
                         "vector": pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), d)})
        table = db.create_table("vectors", data)
        if p.kind == "ivf_pq":
            table.create_index("vector", config=IvfPq(distance_type=p.metric,
                                                      num_partitions=p.partitions,
                                                      num_sub_vectors=p.sub_vectors))
        elif p.kind == "ivf_hnsw_sq":
            table.create_index("vector", config=HnswSq(distance_type=p.metric,
                                                       num_partitions=p.partitions, m=p.m,
                                                       ef_construction=p.ef_construction))
        self._table = table

    def set_search_params(self, **params) -> None:
        check_search_params(self.name, LanceDBParams, params)
        self.params = self.params.model_copy(update=params)

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return search_table(self._table, self.params, self.dim, Q, k, self.path)

    def search_filtered(self, Q: np.ndarray, k: int, allowed) -> tuple[np.ndarray, np.ndarray]:
        return search_table(self._table, self.params, self.dim, Q, k, self.path, allowed)

    def shared_client(self) -> "LanceDBClient":
        """A picklable reader of this table (the load test's client processes share it on disk
        instead of each building its own)."""
        return LanceDBClient(str(self.path), self.params, self.dim)

    def nbytes(self) -> int:
        """The table folder on disk: vectors, index files and manifests."""
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())


def id_predicate(allowed) -> str:
    """The SQL predicate LanceDB filters by: the allowed ids (an AllowedSet), built once per set."""
    if "lancedb" not in allowed.cache:
        rows = allowed.rows
        allowed.cache["lancedb"] = (f"id IN ({', '.join(map(str, rows.tolist()))})" if len(rows)
                                    else "false")
    return allowed.cache["lancedb"]


def search_table(table, p: LanceDBParams, dim: int, Q: np.ndarray, k: int, where,
                 allowed=None) -> tuple[np.ndarray, np.ndarray]:
    """The top k of each query; with `allowed`, among those ids only (LanceDB's prefilter)."""
    if Q.shape[1] != dim:
        raise ConfigError(f"lancedb table at {where} holds {dim}-dimensional vectors but the "
                          f"queries have {Q.shape[1]}: encode both with the same model")
    ids = np.full((len(Q), k), -1, dtype=np.int64)
    scores = np.full((len(Q), k), -np.inf, dtype=np.float32)
    for i, q in enumerate(Q):
        query = table.search(q).distance_type(p.metric).limit(k).select(["id", "_distance"])
        if allowed is not None:
            query = query.where(id_predicate(allowed), prefilter=True)
        if p.kind == "exact":
            query = query.bypass_vector_index()
        else:
            query = query.nprobes(p.nprobes)
            if p.kind == "ivf_hnsw_sq":
                query = query.ef(p.ef)
            if p.refine_factor:
                query = query.refine_factor(p.refine_factor)
        got = query.to_arrow()
        m = got.num_rows
        ids[i, :m] = got["id"].to_numpy()
        scores[i, :m] = 1.0 - got["_distance"].to_numpy()  # dot: 1 - q.x; cosine: 1 - cos
    return ids, scores


class LanceDBClient:
    def __init__(self, path: str, params: LanceDBParams, dim: int):
        self.path, self.params, self.dim = path, params, dim
        self._table = None

    def open(self) -> "LanceDBClient":
        import lancedb
        self._table = lancedb.connect(self.path).open_table("vectors")
        return self

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return search_table(self._table, self.params, self.dim, Q, k, self.path)
