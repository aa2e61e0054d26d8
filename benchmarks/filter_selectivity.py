"""Filtered ANN search against selectivity: recall and speed of every backend when a filter
keeps 50%, 10%, 1%, 0.1% of the corpus.

    .venv/bin/python benchmarks/filter_selectivity.py [--config configs/filter-selectivity.yaml]
        [--out reports/filter-selectivity] [--n 20000] [--backends hnsw,annoy]

Vectors come from harness.ann.synthetic; each vector gets a seeded uniform label 0..999,
independent of its cluster, and selectivity s allows `label < 1000 s`. Every query of a point
uses that one allowed set. Recall is filter-aware (exact search over the allowed vectors); the
index search alone is timed, as in benchmarks/ann_scaling.py (harness.ann.sweep.measure_search).
A post-filtering backend (Annoy) keeps what its unfiltered top 10k happens to allow: its recall
collapse at low selectivity is the point of the report. Writes results.csv and index.html (two
plots and the table) to --out and prints the rows.
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

from harness.ann import sweep
from harness.ann.recall import ann_recall, filtered_exact_neighbours, result_flags
from harness.ann.synthetic import synthetic_vectors
from harness.core import registry
from harness.core.context import RunContext
from harness.filters.allowed import AllowedSet
from harness.reports.svg import Point, scatter
from harness.storage import atomic

COLUMNS = ["backend", "point", "filter_mode", "selectivity", "allowed", "k", "recall_at_k",
           "short_of_k", "single_qps", "p95_ms", "batch_qps", "build_s"]
LABELS = 1000


class Filtered:
    """An index whose `search` is its filtered search over one allowed set (what
    sweep.measure_search times)."""

    def __init__(self, index, allowed: AllowedSet):
        self.index, self.allowed = index, allowed
        self.threads = getattr(index, "threads", 1)

    def search(self, Q, k):
        return self.index.search_filtered(Q, k, self.allowed)


def allowed_sets(n: int, seed: int, selectivities) -> dict[float, AllowedSet]:
    labels = np.random.default_rng([seed, 99]).integers(0, LABELS, n)
    return {s: AllowedSet(f"label<{round(LABELS * s)}", labels < round(LABELS * s))
            for s in selectivities}


def measure(backend: str, name: str, index, X, Q, k, sets, truth, ctx, cfg, build_s) -> list:
    rows = []
    singles = [Q[i:i + 1] for i in range(min(cfg["latency_queries"], len(Q)))]
    mode = registry.get("ann", backend).factory.FILTER_MODE
    for s, allowed in sets.items():
        m = sweep.measure_search(Filtered(index, allowed), Q, k, singles, cfg["warmup"],
                                 ctx.threads)
        exact_ids, exact_scores = truth[s]
        recall = ann_recall(m.ids, X, Q, exact_ids, exact_scores, k)
        short = result_flags(m.ids, min(k, allowed.size))["short"]
        rows.append({"backend": backend, "point": name, "filter_mode": mode, "selectivity": s,
                     "allowed": allowed.size, "k": k, "recall_at_k": float(recall.mean()),
                     "short_of_k": short / len(Q), "single_qps": 1000.0 / m.latency.mean_ms,
                     "p95_ms": m.latency.p95_ms, "batch_qps": m.batch_qps, "build_s": build_s})
        r = rows[-1]
        print(f"{name:<34} {mode:>4} {s:>6} {allowed.size:>7} {r['recall_at_k']:7.3f} "
              f"{r['short_of_k']:6.3f} {r['single_qps']:9.1f} {r['p95_ms']:8.2f} "
              f"{r['batch_qps']:9.1f}", flush=True)
    return rows


def html(rows: list[dict], cfg: dict, header: str) -> str:
    recall = [Point(r["selectivity"], r["recall_at_k"], f"{r['point']} s={r['selectivity']}",
                    r["point"]) for r in rows]
    speed = [Point(r["selectivity"], r["single_qps"], f"{r['point']} s={r['selectivity']}",
                   r["point"]) for r in rows]
    table = "".join("<tr>" + "".join(f"<td>{_fmt(r[c])}</td>" for c in COLUMNS) + "</tr>"
                    for r in rows)
    return (f"<!doctype html><meta charset='utf-8'><title>{cfg['name']}</title>"
            f"<h1>Filtered ANN search vs selectivity</h1><p>{header}</p>"
            "<p>Recall is against exact search over the allowed vectors. Post-filter backends "
            "search unfiltered and drop what the filter excludes: at low selectivity they return "
            "fewer than k (short_of_k) and miss the allowed neighbours.</p>"
            + scatter(recall, "selectivity (fraction allowed)", f"filtered ann recall@{cfg['k']}",
                      x_log=True, connect=True, title="recall vs selectivity")
            + scatter(speed, "selectivity (fraction allowed)", "queries/s (single query)",
                      x_log=True, y_log=True, connect=True, title="q/s vs selectivity")
            + "<table border=1 cellpadding=3><tr>" + "".join(f"<th>{c}</th>" for c in COLUMNS)
            + f"</tr>{table}</table>")


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/filter-selectivity.yaml")
    ap.add_argument("--out", type=Path, default=Path("reports/filter-selectivity"))
    ap.add_argument("--n", type=int, help="corpus size (default: the config's)")
    ap.add_argument("--backends", help="comma-separated backend types (default: all)")
    ap.add_argument("--cache-dir", type=Path, help="default: HARNESS_CACHE_DIR or .cache/harness")
    args = ap.parse_args(argv)

    cfg = yaml.safe_load(Path(args.config).read_text())
    syn, k, n = cfg["synthetic"], cfg["k"], args.n or cfg["n"]
    wanted = set(args.backends.split(",")) if args.backends else None
    ctx = RunContext(threads=cfg["threads"], seed=cfg["seed"], progress=False,
                     **({"cache_dir": args.cache_dir} if args.cache_dir else {}))
    plans = [sweep.parse_sweep(e, where=f"backends[{e['type']}]", k=k) for e in cfg["backends"]
             if wanted is None or e["type"] in wanted]
    gen = dict(d=syn["d"], n_clusters=syn["n_clusters"], spread=syn["spread"], decay=syn["decay"])
    X = synthetic_vectors(ctx, n, "corpus", **gen)
    Q = np.ascontiguousarray(synthetic_vectors(ctx, syn["queries"], "queries", **gen))
    sets = allowed_sets(n, cfg["seed"], cfg["selectivities"])
    truth = {s: filtered_exact_neighbours(X, Q, k, [a.rows] * len(Q)) for s, a in sets.items()}
    header = (f"n={n} d={syn['d']} queries={len(Q)} k={k} threads={ctx.threads} "
              f"date={time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(header)
    print(f"{'point':<34} mode    sel allowed  recall  short     1q_qps   p95_ms  batch_qps")
    rows = []
    for plan in plans:
        plugin = registry.get("ann", plan.backend)
        for build in plan.build_points:
            index = plugin.factory(plugin.params(**build, **plan.search_points[0]), ctx)
            started = time.perf_counter()
            index.build(X)
            build_s = time.perf_counter() - started
            for search in plan.search_points:
                index.set_search_params(**search)
                name = sweep.point_name(plan.backend, {**build, **search})
                rows += measure(plan.backend, name, index, X, Q, k, sets, truth, ctx, cfg, build_s)
            del index
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(args.out / "results.csv", buf.getvalue())
    atomic.write_text(args.out / "index.html", html(rows, cfg, header))
    print(f"# wrote {args.out}/results.csv and index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
