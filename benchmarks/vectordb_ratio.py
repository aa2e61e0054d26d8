"""pgvector HNSW vs hnswlib at matched recall on SciFact MiniLM vectors, and where pgvector's
time per query goes (issue 12, acceptance 1).

Both indexes are built on the same cached document vectors (encoded once by the harness's dense
retriever, then read from the embedding cache) and searched with the same queries by
harness.ann.sweep.run_sweep, the function every ANN point is measured with. For each backend the
cheapest search point reaching `--recall` (ann_recall@10) is taken, and the single-query q/s ratio
printed. pgvector's mean time per query is then split into: the round trip of an empty statement
(`SELECT 1`: socket, protocol, psycopg), the server's planning and execution times for the
query (EXPLAIN ANALYZE, averaged over the same queries), and the rest (parameter and result
conversion in the client).

    PYTHONPATH=. .venv/bin/python benchmarks/vectordb_ratio.py [--recall 0.99] [--queries 300]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.ann.recall import exact_neighbours  # noqa: E402
from harness.ann.sweep import run_sweep  # noqa: E402
from harness.config import load as load_config  # noqa: E402
from harness.core import registry  # noqa: E402
from harness.execution.benchmark import dataset_key, prepare_dataset  # noqa: E402
from harness.execution.runner import make_context  # noqa: E402

SWEEPS = {
    "hnsw": ([{"M": 16, "ef_construction": 200, "deterministic": True}],
             [{"ef": ef} for ef in (16, 24, 32, 48, 64, 96, 128, 200)]),
    "pgvector": ([{"kind": "hnsw", "m": 16, "ef_construction": 200}],
                 [{"ef_search": ef} for ef in (16, 24, 32, 48, 64, 96, 128, 200)]),
}


def vectors(n_queries: int):
    config = load_config(ROOT / "configs" / "scifact-vectordb.yaml")
    dataset = prepare_dataset(config, None)
    ctx = make_context(config, None, dataset_key(config, dataset), progress=False)
    plugin = registry.get("retriever", "dense")
    dense = plugin.factory(plugin.params(model=config.pipelines[0].retriever.model), ctx)
    _, arrays = dense.document_arrays(dataset.corpus)
    texts = list(dataset.judged_queries().values())[:n_queries]
    Q = np.ascontiguousarray(dense.encode_queries(texts), dtype=np.float32)
    return np.ascontiguousarray(arrays["vectors"], dtype=np.float32), Q, ctx


def cheapest(results, recall: float):
    ok = [r for r in results if r.status == "ok" and r.recall >= recall]
    return max(ok, key=lambda r: r.single_qps) if ok else None


def breakdown(index, Q: np.ndarray, k: int) -> dict[str, float]:
    """Mean ms per query: client total, empty round trip, server planning, server execution."""
    conn = index._client._conn
    for _ in range(20):
        conn.execute("SELECT 1")
    start = time.perf_counter_ns()
    for _ in range(len(Q)):
        conn.execute("SELECT 1", prepare=True).fetchone()
    rtt = (time.perf_counter_ns() - start) / 1e6 / len(Q)
    start = time.perf_counter_ns()
    index.search(Q, k)
    total = (time.perf_counter_ns() - start) / 1e6 / len(Q)
    planning = execution = 0.0
    sql = f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM {index.table} ORDER BY embedding <#> %s LIMIT {k}"
    for q in Q:
        plan = conn.execute(sql, (q,)).fetchone()[0][0]
        planning += plan["Planning Time"]
        execution += plan["Execution Time"]
    return {"client_total_ms": total, "round_trip_ms": rtt, "server_planning_ms": planning / len(Q),
            "server_execution_ms": execution / len(Q)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recall", type=float, default=0.99)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args(argv)
    X, Q, ctx = vectors(args.queries)
    k = 10
    exact_ids, exact_scores = exact_neighbours(X, Q, k)
    ctx.threads = 1  # one thread each: pgvector answers one query per connection at a time
    best = {}
    for backend, (build, search) in SWEEPS.items():
        results = run_sweep(backend, build, search, X, Q, k, exact_ids, exact_scores, ctx,
                            warmup=20)
        for r in results:
            print(f"{r.name:50s} recall {r.recall:.4f}  single {r.single_qps:8.0f} q/s  "
                  f"p50 {r.latency.p50_ms:.3f} ms  p99 {r.latency.p99_ms:.3f} ms")
        best[backend] = cheapest(results, args.recall)
    if not all(best.values()):
        print(f"a backend never reached recall {args.recall}", file=sys.stderr)
        return 1
    h, p = best["hnsw"], best["pgvector"]
    print(f"\nat ann_recall@10 >= {args.recall}: hnswlib {h.name} {h.recall:.4f} "
          f"{h.single_qps:.0f} q/s; pgvector {p.name} {p.recall:.4f} {p.single_qps:.0f} q/s")
    print(f"pgvector / hnswlib single-query q/s = {p.single_qps / h.single_qps:.3f}")
    plugin = registry.get("ann", "pgvector")
    index = plugin.factory(plugin.params(**p.build_params, **p.search_params), ctx)
    index.build(X)
    parts = breakdown(index, Q, k)
    index.close()
    print("pgvector mean ms per query: " + ", ".join(f"{n} {v:.3f}" for n, v in parts.items()))
    rest = parts["client_total_ms"] - parts["round_trip_ms"] - parts["server_execution_ms"] \
        - parts["server_planning_ms"]
    print(f"  client-side conversion and protocol beyond an empty round trip: {rest:.3f} ms; "
          f"hnswlib's whole search: {1000 / h.single_qps:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
