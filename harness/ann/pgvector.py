"""`pgvector`: PostgreSQL + pgvector as an ANN backend (kinds hnsw, ivfflat, exact).

Vectors go in with one binary COPY, the index is built after the ingest (the fast path pgvector
documents), and each query is one SQL statement over a connection: single-query latency and batch
q/s include the client round trip and the server's planning, unlike the in-process backends.
The server is the one of `dsn` / $HARNESS_PG_DSN, else an embedded one (harness.engines.postgres).
Each index is its own table, named per run and dropped when the index is freed unless `keep`.

Filtered search is a pre-filter in SQL: `WHERE id = ANY(<allowed ids>)` (`id + 0` for the ANN
kinds), the id array sent as one binary parameter built once per allowed set. An HNSW or IVFFlat scan applies that WHERE to
the rows its index returns, so alone it would return fewer than k rows at low selectivity; the
filtered queries run with pgvector 0.8's iterative index scans (`ITERATIVE_SCAN`): the scan
resumes until k allowed rows are found or its limit is reached (`hnsw.max_scan_tuples`,
`ivfflat.max_probes`, server settings); what is still short of k is counted by the result flags.
`relaxed_order` may return rows slightly out of order, so they are re-sorted by distance.
"""
from __future__ import annotations

import secrets
import weakref
from typing import Any, ClassVar, Literal, Optional

import numpy as np
from pydantic import Field

from harness.core.context import RunContext
from harness.core.errors import ConfigError
from harness.core.registry import register
from harness.ann.base import ANNParams, Similarity, check_search_params
from harness.evaluation.timing import time_call

# operator class, distance operator, score from distance (SQL)
_METRICS = {"ip": ("vector_ip_ops", "<#>", "-({d})"),
            "cosine": ("vector_cosine_ops", "<=>", "1 - ({d})")}
# pgvector's iterative scan mode for filtered HNSW / IVFFlat queries (recorded in build stats).
ITERATIVE_SCAN = "relaxed_order"
_INT4_OID = 23


class PgvectorParams(ANNParams):
    SEARCH_PARAMS: ClassVar[frozenset[str]] = frozenset({"ef_search", "probes"})
    ALIASES: ClassVar[dict[str, str]] = {"ef_construction": "efC", "ef_search": "ef"}
    # Connection settings: not part of a point's name (a DSN may hold a password).
    UNNAMED: ClassVar[frozenset[str]] = frozenset({"dsn", "keep"})

    kind: Literal["hnsw", "ivfflat", "exact"] = "hnsw"
    m: int = Field(16, ge=2, le=100, description="hnsw: graph degree")
    ef_construction: int = Field(64, ge=4, le=1000, description="hnsw: build candidate list")
    lists: int = Field(100, ge=1, le=32768, description="ivfflat: inverted lists")
    metric: Literal["ip", "cosine"] = Field("ip", description="vector_ip_ops or vector_cosine_ops")
    dsn: Optional[str] = Field(None, description="existing server; None = $HARNESS_PG_DSN or embedded")
    keep: bool = Field(False, description="keep the table after the run")
    ef_search: int = Field(40, ge=1, le=1000, description="hnsw: search candidate list; >= k")
    probes: int = Field(1, ge=1, description="ivfflat: lists visited per query")

    def index_similarity(self) -> Similarity:
        return "cos" if self.metric == "cosine" else "dot"

    def check_depth(self, k: int, where: str = "search") -> dict[str, Any]:
        if self.kind == "hnsw" and self.ef_search < k:
            raise ConfigError(f"{where}.ef_search: {self.ef_search} < k={k}; pgvector's HNSW scan "
                              f"returns at most ef_search rows. Set ef_search >= k")
        if self.kind == "ivfflat" and self.probes > self.lists:
            raise ConfigError(f"{where}.probes: {self.probes} > lists={self.lists}")
        used = {"hnsw": ("ef_search",), "ivfflat": ("probes",), "exact": ()}[self.kind]
        return {f: getattr(self, f) for f in used}


def _copy_payload(X: np.ndarray) -> bytes:
    """PostgreSQL binary COPY of rows (id int4, embedding vector): header, rows, trailer."""
    n, d = X.shape
    row = np.dtype([("nfields", ">i2"), ("id_len", ">i4"), ("id", ">i4"), ("vec_len", ">i4"),
                    ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (d,))])
    rows = np.empty(n, dtype=row)
    rows["nfields"], rows["id_len"], rows["id"] = 2, 4, np.arange(n)
    rows["vec_len"], rows["dim"], rows["unused"], rows["vec"] = 4 + 4 * d, d, 0, X
    return b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rows.tobytes() + b"\xff\xff"


class IdArray:
    """Row ids sent as one binary PostgreSQL int4[] parameter (built once per allowed set)."""

    def __init__(self, ids: np.ndarray):
        n = len(ids)
        header = np.array([1, 0, _INT4_OID, n, 1], ">i4").tobytes()  # ndim, nulls, oid, size, lb
        items = np.empty((n, 2), ">i4")
        items[:, 0], items[:, 1] = 4, ids
        self.payload = header + items.tobytes()


def _vector_dumper(conn):
    """A binary dumper sending float32 numpy rows as pgvector `vector` parameters."""
    import psycopg
    from psycopg.adapt import Dumper
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(conn, "vector")

    class VectorDumper(Dumper):
        format = psycopg.pq.Format.BINARY
        oid = info.oid

        def dump(self, obj: np.ndarray) -> bytes:
            return np.array([obj.shape[-1], 0], ">i2").tobytes() + obj.astype(">f4").tobytes()

    class IdArrayDumper(Dumper):
        format = psycopg.pq.Format.BINARY
        oid = conn.adapters.types["int4"].array_oid

        def dump(self, obj: IdArray) -> bytes:
            return obj.payload

    conn.adapters.register_dumper(np.ndarray, VectorDumper)
    conn.adapters.register_dumper(IdArray, IdArrayDumper)


def connect(dsn: str):
    """An autocommit connection with pgvector available, or a clear error."""
    import psycopg
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        conn.close()
        raise ConfigError(f"the pgvector extension is not available on the PostgreSQL server "
                          f"({str(exc).strip()}); install pgvector there "
                          f"(https://github.com/pgvector/pgvector#installation) or unset dsn: / "
                          f"$HARNESS_PG_DSN to use the embedded server, which ships it") from None
    _vector_dumper(conn)
    return conn


class PgvectorClient:
    """Searches one pgvector table over its own connection; picklable before open() (the load
    test's client processes each open one against the same server)."""

    def __init__(self, dsn: str, table: str, params: PgvectorParams, dim: int):
        self.dsn, self.table, self.params, self.dim = dsn, table, params, dim
        self._conn = None

    def __getstate__(self):
        return {**self.__dict__, "_conn": None}

    def open(self) -> "PgvectorClient":
        self._conn = connect(self.dsn)
        # A small table can make the planner prefer a sequential scan: the ANN kinds must use
        # their index, or the point would measure exact search.
        if self.params.kind != "exact":
            self._conn.execute("SET enable_seqscan = off")
        self.set_search_params()
        return self

    def set_search_params(self, **params) -> None:
        self.params = self.params.model_copy(update=params)
        if self._conn is not None:
            self._conn.execute(f"SET hnsw.ef_search = {int(self.params.ef_search)}")
            self._conn.execute(f"SET ivfflat.probes = {int(self.params.probes)}")

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        _, op, score = _METRICS[self.params.metric]
        sql = (f"SELECT id, {score.format(d=f'embedding {op} %(q)s')} FROM {self.table} "
               f"ORDER BY embedding {op} %(q)s LIMIT {int(k)}")
        return self._run(sql, Q, k, {})

    def search_filtered(self, Q: np.ndarray, k: int, allowed) -> tuple[np.ndarray, np.ndarray]:
        """The top k among the allowed rows (an AllowedSet): a WHERE on the ids, with iterative
        index scans for the ANN kinds (set for these queries only: an unfiltered search keeps
        the configured ef_search / probes exactly)."""
        _, op, score = _METRICS[self.params.metric]
        iterative = self.params.kind != "exact"
        # The planner would serve a small allowed set from the primary key and sort it (exact
        # search): `id + 0` has no b-tree, so an ANN kind scans its own index as configured.
        column = "id + 0" if iterative else "id"
        # MATERIALIZED: the index scan's LIMIT applies first, then its rows are put in order.
        sql = (f"WITH hits AS MATERIALIZED (SELECT id, embedding {op} %(q)s AS d FROM {self.table} "
               f"WHERE {column} = ANY(%(ids)s) ORDER BY embedding {op} %(q)s LIMIT {int(k)}) "
               f"SELECT id, {score.format(d='d')} FROM hits ORDER BY d, id")
        ids = allowed.cache.get("pgvector")
        if ids is None:
            ids = allowed.cache["pgvector"] = IdArray(allowed.rows)
        if iterative:
            self._conn.execute(f"SET {self.params.kind}.iterative_scan = {ITERATIVE_SCAN}")
        try:
            return self._run(sql, Q, k, {"ids": ids})
        finally:
            if iterative:
                self._conn.execute(f"RESET {self.params.kind}.iterative_scan")

    def _run(self, sql: str, Q: np.ndarray, k: int, args: dict) -> tuple[np.ndarray, np.ndarray]:
        if Q.shape[1] != self.dim:
            raise ConfigError(f"pgvector table {self.table} holds {self.dim}-dimensional vectors but "
                              f"the queries have {Q.shape[1]}: encode both with the same model")
        ids = np.full((len(Q), k), -1, dtype=np.int64)
        scores = np.full((len(Q), k), -np.inf, dtype=np.float32)
        cur = self._conn.cursor(binary=True)
        for i, q in enumerate(Q):
            rows = cur.execute(sql, {"q": q, **args}, prepare=True).fetchall()
            if rows:
                got = np.asarray(rows, dtype=np.float64)
                ids[i, :len(rows)], scores[i, :len(rows)] = got[:, 0], got[:, 1]
        return ids, scores

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _drop(conn, table: str, keep: bool, server) -> None:
    from harness.engines import postgres
    try:
        if not keep and not conn.closed:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()
    except Exception:  # a server already gone has nothing left to drop
        pass
    postgres.release(server)


@register("ann", "pgvector", params=PgvectorParams, requires=("psycopg",),
          install_hint="pip install 'retrieval-harness[pgvector]'")
class PgvectorIndex:
    """PostgreSQL + pgvector: HNSW, IVFFlat or exact scan, over SQL; filtered: a WHERE on the
    allowed ids (a pre-filter; HNSW / IVFFlat with iterative index scans)."""

    name = "pgvector"
    FILTER_MODE = "pre"
    threads = 1  # one connection: queries run one after another, whatever the batch

    def __init__(self, params: PgvectorParams, ctx: RunContext):
        self.params = params
        self.ctx = ctx
        self._client: Optional[PgvectorClient] = None
        self._stats: dict[str, float] = {}

    def build(self, X: np.ndarray) -> None:
        from harness.engines import postgres
        p = self.params
        n, d = X.shape
        if p.kind == "ivfflat" and p.lists > n:
            raise ConfigError(f"ann pgvector: lists={p.lists} exceeds the {n} vectors to index")
        dsn, self._server = postgres.acquire(p.dsn)
        table = f"harness_{p.kind}_{secrets.token_hex(4)}"
        conn = connect(dsn)
        self._finalizer = weakref.finalize(self, _drop, conn, table, p.keep, self._server)
        conn.execute(f"CREATE TABLE {table} (id int4 PRIMARY KEY, embedding vector({d}))")
        payload = _copy_payload(np.ascontiguousarray(X, dtype=np.float32))

        def ingest():
            with conn.cursor().copy(f"COPY {table} (id, embedding) FROM STDIN WITH (FORMAT BINARY)") as cp:
                for start in range(0, len(payload), 1 << 24):
                    cp.write(payload[start:start + (1 << 24)])
        _, ingest_s = time_call(ingest)
        opclass, _, _ = _METRICS[p.metric]
        index_s = 0.0
        if p.kind != "exact":
            conn.execute("SET maintenance_work_mem = '1GB'")  # the HNSW graph built in memory
            conn.execute(f"SET max_parallel_maintenance_workers = {max(0, self.ctx.threads - 1)}")
            with_ = (f"m = {p.m}, ef_construction = {p.ef_construction}" if p.kind == "hnsw"
                     else f"lists = {p.lists}")
            _, index_s = time_call(lambda: conn.execute(
                f"CREATE INDEX ON {table} USING {p.kind} (embedding {opclass}) WITH ({with_})"))
        conn.execute(f"ANALYZE {table}")
        self._conn, self.table, self.dsn = conn, table, dsn
        self._size = int(conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0])
        self._stats = {"ingest_wall_s": ingest_s, "ingest_rows_per_s": n / ingest_s if ingest_s else 0.0,
                       "index_build_wall_s": index_s}
        memory = self._server.memory_bytes() if self._server else None
        if memory is not None:
            self._stats["server_rss_bytes"] = memory
        if p.kind != "exact":  # how a filtered query scans the index
            self._stats["filter_iterative_scan"] = ITERATIVE_SCAN
        self._client = PgvectorClient(dsn, table, p, d).open()
        self._finalizer.detach()
        client, server = self._client, self._server  # not self: the finalizer must not hold it
        self._finalizer = weakref.finalize(self, lambda: (client.close(),
                                                          _drop(conn, table, p.keep, server)))

    def build_stats(self) -> dict[str, Any]:
        """Ingest and index-build times apart, ingest rows/s, the server's memory after build,
        the iterative scan mode of filtered queries."""
        return dict(self._stats)

    def shared_client(self) -> PgvectorClient:
        """A picklable client of this table (the load test's client processes)."""
        return PgvectorClient(self.dsn, self.table, self._client.params, self._client.dim)

    def set_search_params(self, **params) -> None:
        check_search_params(self.name, PgvectorParams, params)
        self.params = self.params.model_copy(update=params)
        self._client.set_search_params(**params)

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self._client.search(Q, k)

    def search_filtered(self, Q: np.ndarray, k: int, allowed) -> tuple[np.ndarray, np.ndarray]:
        return self._client.search_filtered(Q, k, allowed)

    def nbytes(self) -> int:
        """Table + index on disk (pg_total_relation_size)."""
        return self._size

    def close(self) -> None:
        self._finalizer()
