"""How build time, size, memory, recall and speed of the ANN backends grow with corpus size.

    .venv/bin/python benchmarks/ann_scaling.py                       # every size in the config
    .venv/bin/python benchmarks/ann_scaling.py --n 1000000 --backends hnsw,flat

Vectors come from harness.ann.synthetic (cached, memory-mapped). Exact neighbours are computed
once per size and shared by every backend. Prints one row per sweep point and, with --csv,
writes the rows to a file (`recall_at_k`: ann recall@k at the config's k; `search_used`: the
search parameters the engine ran with, e.g. Annoy's default search_k resolved to n_trees * k).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from harness.storage import atomic
from harness.ann import sweep
from harness.ann.pareto import recall_qps_frontier
from harness.ann.recall import exact_neighbours
from harness.ann.synthetic import synthetic_vectors
from harness.core.context import RunContext
from harness.evaluation.timing import peak_rss_bytes

COLUMNS = ["n", "point", "status", "search_used", "build_s", "size_mb", "rss_delta_mb", "k",
           "recall_at_k", "single_qps", "p50_ms", "p95_ms", "batch_qps", "batch_threads"]


def row_of(n: int, r: sweep.PointResult) -> dict:
    mb = lambda b: b / 2**20 if b is not None else float("nan")  # noqa: E731
    lat = r.latency
    return {"n": n, "point": r.name, "status": r.status if r.status == "ok" else f"failed: {r.reason}",
            "search_used": ",".join(f"{p}={v}" for p, v in r.search_used.items()),
            "build_s": r.build_s, "size_mb": mb(r.size_bytes), "rss_delta_mb": mb(r.peak_rss_delta_bytes),
            "k": r.k, "recall_at_k": r.recall, "single_qps": r.single_qps,
            "p50_ms": lat.p50_ms if lat else float("nan"), "p95_ms": lat.p95_ms if lat else float("nan"),
            "batch_qps": r.batch_qps, "batch_threads": r.batch_threads}


def print_row(row: dict) -> None:
    cells = [f"{row['n']:>8}", f"{row['point']:<34}", f"{row['build_s']:8.1f}", f"{row['size_mb']:8.1f}",
             f"{row['rss_delta_mb']:8.1f}", f"{row['recall_at_k']:6.3f}", f"{row['single_qps']:8.0f}",
             f"{row['p95_ms']:7.2f}", f"{row['batch_qps']:8.0f}"]
    extra = "" if row["status"] == "ok" else f"  {row['status']}"
    print(" ".join(cells) + extra, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/ann-scaling.yaml")
    ap.add_argument("--n", help="comma-separated sizes (default: the config's)")
    ap.add_argument("--backends", help="comma-separated backend types (default: all in the config)")
    ap.add_argument("--latency-queries", type=int, help="override the config's")
    ap.add_argument("--cache-dir", type=Path, help="default: HARNESS_CACHE_DIR or .cache/harness")
    ap.add_argument("--csv", type=Path, help="write the rows here")
    args = ap.parse_args(argv)

    cfg = yaml.safe_load(Path(args.config).read_text())
    syn = cfg["synthetic"]
    sizes = [int(s) for s in args.n.split(",")] if args.n else cfg["sizes"]
    wanted = set(args.backends.split(",")) if args.backends else None
    context = RunContext(threads=cfg["threads"], seed=cfg["seed"], progress=False,
                         **({"cache_dir": args.cache_dir} if args.cache_dir else {}))
    import faiss
    faiss.omp_set_num_threads(context.threads)
    gen = dict(d=syn["d"], n_clusters=syn["n_clusters"], spread=syn["spread"], decay=syn["decay"])
    k = cfg["k"]
    latency_queries = args.latency_queries or cfg["latency_queries"]

    # Validate every sweep (at depth k) before generating anything.
    plans = []
    for entry in cfg["backends"]:
        entry = dict(entry)
        entry_sizes = entry.pop("sizes", None)
        if wanted is None or entry["type"] in wanted:
            plans.append((entry_sizes, sweep.parse_sweep(entry, where=f"backends[{entry['type']}]", k=k)))

    print(f"threads={context.threads} k={k} latency_queries={latency_queries} "
          f"date={time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    header = ["n", "point", "build_s", "size_MB", "rssΔ_MB", f"R@{k}", "1q_qps", "p95_ms", "batch_qps"]
    print(f"{header[0]:>8} {header[1]:<34} " + " ".join(f"{h:>8}" for h in header[2:]), flush=True)
    rows = []
    for n in sizes:
        start = time.perf_counter()
        X = synthetic_vectors(context, n, "corpus", **gen)
        Q = np.ascontiguousarray(synthetic_vectors(context, syn["queries"], "queries", **gen))
        exact_ids, exact_scores = exact_neighbours(X, Q, k)
        print(f"# n={n}: vectors + exact neighbours ready in {time.perf_counter() - start:.1f} s", flush=True)
        results = []
        for entry_sizes, plan in plans:
            if entry_sizes is not None and n not in entry_sizes:
                continue
            results += sweep.run_sweep(
                plan.backend, plan.build_points, plan.search_points, X, Q, k, exact_ids, exact_scores,
                context, latency_queries=latency_queries, warmup=cfg["warmup"],
                on_point=lambda r, n=n: (rows.append(row_of(n, r)), print_row(rows[-1])))
        frontier = ", ".join(r.name for r in recall_qps_frontier(results))
        print(f"# n={n}: recall/q-s Pareto frontier: {frontier}", flush=True)
        del X
    print(f"# process peak RSS {peak_rss_bytes() / 2**30:.2f} GiB")
    if args.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        atomic.write_text(args.csv, buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
