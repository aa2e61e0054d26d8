"""Harness overhead on single-query timing (issue 3, acceptance 2).

For one index and the same queries, compares the single-query q/s the sweep measures
(harness.ann.sweep.measure_search: backend wrapper + timing helper) with a bare loop calling the
engine directly, in one process. Rounds alternate so machine-load drift hits both sides; medians
are reported. Vectors are random, SciFact-sized (5,183 x 384), so no model is needed.

    .venv/bin/python benchmarks/ann_overhead.py [--queries 1000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from harness.core import registry
from harness.ann import sweep
from harness.core.context import RunContext


def bare_qps(call, items: list, k: int, warmup: int) -> float:
    for q in items[:warmup]:
        call(q, k)
    start = time.perf_counter_ns()
    for q in items:
        call(q, k)
    return len(items) / ((time.perf_counter_ns() - start) / 1e9)


def harness_qps(index, Q: np.ndarray, items: list, k: int, warmup: int) -> float:
    latency = sweep.measure_search(index, Q, k, items, warmup, threads=1).latency
    return 1000.0 / latency.mean_ms


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1, help="engine threads (1: no OpenMP wake-ups)")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((5183, 384), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = rng.standard_normal((args.queries, 384), dtype=np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    items = [Q[i:i + 1] for i in range(len(Q))]
    context = RunContext(cache_dir=Path(".cache/harness"), threads=args.threads, progress=False)
    k, warmup = 10, 50
    import faiss
    faiss.omp_set_num_threads(args.threads)

    print(f"date={time.strftime('%Y-%m-%d %H:%M:%S %Z')} X=5183x384 queries={len(Q)} k={k} "
          f"threads={args.threads} rounds={args.rounds}")
    worst = 0.0
    for backend, params, engine in [("hnsw", dict(M=16, ef_construction=200, ef=64),
                                     lambda ix: ix._index.knn_query),
                                    ("flat", {}, lambda ix: ix._index.search)]:
        plugin = registry.get("ann", backend)
        index = plugin.factory(plugin.params(**params), context)
        index.build(X)
        raw = engine(index)  # the very engine object the backend wraps
        ours, bare = [], []
        for round_no in range(args.rounds):  # alternate which side goes first: no order bias
            sides = [lambda: ours.append(harness_qps(index, Q, items, k, warmup)),
                     lambda: bare.append(bare_qps(raw, items, k, warmup))]
            for side in sides if round_no % 2 == 0 else sides[::-1]:
                side()
        h, b = statistics.median(ours), statistics.median(bare)
        worst = max(worst, abs(1 - h / b))
        print(f"{backend:5s} harness {h:9.0f} q/s   bare {b:9.0f} q/s   ratio {h / b:.3f}   "
              f"(rounds: harness {[round(x) for x in ours]}, bare {[round(x) for x in bare]})")
    print(f"largest deviation {worst:.1%}: {'within' if worst <= 0.10 else 'OUTSIDE'} 10%")
    return 0 if worst <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
