"""bm25s batch throughput vs Lucene single-query rate on SciFact test, measured in one run.

    .venv/bin/python benchmarks/bm25_speed.py [--latency-queries 100]

Prints nDCG@10 of both and the ratio (issue 2, acceptance 3: bm25s q/s >= 50x Lucene's).
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from harness.core import registry
from harness.core.context import RunContext
from harness.datasets import load_dataset
from harness.evaluation.metrics import evaluate, parse_measures
from harness.evaluation.timing import batch_throughput, single_query_latency


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--latency-queries", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    ds = load_dataset("scifact", "test")
    queries = ds.judged_queries()
    qids = list(queries)
    ctx = RunContext(cache_dir=Path(os.environ.get("HARNESS_CACHE_DIR", tempfile.mkdtemp())),
                     threads=args.threads)
    measures = parse_measures(["nDCG@10"])
    rates = {}
    for name in ("bm25", "bm25s"):
        plugin = registry.get("retriever", name)
        retriever = plugin.factory(plugin.params(), ctx)
        retriever.index(ds.corpus)
        run, seconds, qps = batch_throughput(lambda ids: retriever.search({q: queries[q] for q in ids}, 1000), qids)
        lat = single_query_latency(lambda q: retriever.search({q: queries[q]}, 1000),
                                   qids[:args.latency_queries], warmup=5)
        ndcg = evaluate(ds.qrels, run, measures).aggregate["nDCG@10"]
        rates[name] = (qps, 1000.0 / lat.mean_ms)
        print(f"{name:6s} nDCG@10={ndcg:.4f}  batch {qps:9.1f} q/s  single {1000.0 / lat.mean_ms:8.1f} q/s "
              f"(p50 {lat.p50_ms:.2f} ms, p95 {lat.p95_ms:.2f} ms, n={lat.n_queries})  threads={ctx.threads}")
    ratio = rates["bm25s"][0] / rates["bm25"][1]
    print(f"bm25s batch q/s / Lucene single-query q/s = {ratio:.1f}x (target >= 50x)")
    print(f"bm25s single-query q/s / Lucene single-query q/s = {rates['bm25s'][1] / rates['bm25'][1]:.1f}x")


if __name__ == "__main__":
    main()
