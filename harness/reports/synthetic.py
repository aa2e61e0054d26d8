"""Synthetic results folders (docs/results.md layout) for the report tests and size benchmark.

Seeded and realistic in shape: first stages of different quality, an ANN sweep with
`ann_recall@10` and q/s, two rerankers over `bm25` at two depths, a failed pipeline, runs, timings,
metadata, and the side files `qrels.tsv`, `queries.tsv`, `titles.tsv`. Metrics are computed from
the runs with the harness's own evaluation, so metrics.csv is the mean of per_query.csv.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .. import atomic
from ..evaluation.metrics import evaluate, parse_measures
from ..trec import write_run
from ..types import Qrels, Run, ranked

MEASURES = ("nDCG@10", "RR@10", "R@100")


@dataclass(frozen=True)
class FirstStage:
    name: str
    skill: float                  # 0..1: how high relevant docs tend to rank
    latency_ms: float
    ann_recall: Optional[float] = None   # set for ANN sweep points
    sweep: Optional[str] = None


@dataclass(frozen=True)
class Rerank:
    parent: str
    reranker: str
    depth: int
    skill: float
    latency_ms: float

    @property
    def name(self) -> str:
        return f"{self.parent}>>{self.reranker}@{self.depth}"


DEFAULT_FIRST = (
    FirstStage("bm25", 0.55, 2.0),
    FirstStage("dense-minilm", 0.6, 9.0),
    FirstStage("hnsw-M16-ef16", 0.5, 0.3, 0.82, "hnsw"),
    FirstStage("hnsw-M16-ef64", 0.57, 0.6, 0.95, "hnsw"),
    FirstStage("hnsw-M16-ef256", 0.6, 1.6, 0.995, "hnsw"),
    FirstStage("ivf-nlist64-nprobe4", 0.52, 0.4, 0.80, "ivf"),
    FirstStage("ivf-nlist64-nprobe16", 0.58, 1.5, 0.93, "ivf"),
)
DEFAULT_RERANK = (Rerank("bm25", "ce", 20, 0.8, 40.0), Rerank("bm25", "ce", 100, 0.85, 180.0))


def _first_stage_run(rng, qrels: Qrels, doc_ids: list[str], skill: float, depth: int) -> Run:
    run: Run = {}
    for qid, judged in qrels.items():
        picks = rng.choice(len(doc_ids), size=depth + 8, replace=False)
        docs = [doc_ids[i] for i in picks if doc_ids[i] not in judged][:depth]
        for doc in judged:  # each relevant doc lands at a skill-dependent rank, or is missed
            if rng.random() < 0.15 + 0.8 * skill:
                docs.insert(min(int(rng.exponential(12 * (1.05 - skill))), len(docs)), doc)
        run[qid] = {doc: float(depth + 8 - rank) for rank, doc in enumerate(docs[:depth])}
    return run


def _rerank_run(rng, qrels: Qrels, first: Run, depth: int, skill: float) -> Run:
    """Rescore the first stage's top `depth`: relevant docs get a skill-sized boost plus noise."""
    run: Run = {}
    for qid, docs in first.items():
        head = [doc for doc, _ in ranked(docs)[:depth]]
        scores = rng.normal(0, 1, len(head)) + np.array(
            [2.5 * skill if qrels[qid].get(d, 0) > 0 else 0.0 for d in head])
        run[qid] = {doc: float(s) for doc, s in zip(head, scores)}
    return run


def _csv(rows: list[tuple], header: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[repr(v) if isinstance(v, float) else v for v in row] for row in rows])
    return buffer.getvalue()


def write_results(out: Path, n_queries: int = 40, n_docs: int = 400, depth: int = 100,
                  first_stages=DEFAULT_FIRST, reranks=DEFAULT_RERANK,
                  failed: dict[str, str] | None = None, seed: int = 0,
                  run_name: str = "synthetic-20260101T000000Z") -> Path:
    rng = np.random.default_rng(seed)
    out = Path(out)
    failed = {"colbert-plaid": "timeout after 600 s"} if failed is None else failed
    doc_ids = [f"d{i}" for i in range(n_docs)]
    qids = [f"q{i}" for i in range(n_queries)]
    qrels: Qrels = {q: {str(d): int(rng.integers(1, 3))
                        for d in rng.choice(doc_ids, size=int(rng.integers(1, 4)), replace=False)}
                    for q in qids}
    measures = parse_measures(MEASURES)
    runs: dict[str, Run] = {}
    for stage in first_stages:
        runs[stage.name] = _first_stage_run(rng, qrels, doc_ids, stage.skill, depth)
    for stage in reranks:
        runs[stage.name] = _rerank_run(rng, qrels, runs[stage.parent], stage.depth, stage.skill)

    metrics, per_query, timings, pipelines = [], [], [], {}
    for stage in (*first_stages, *reranks):
        name = stage.name
        write_run(out / "runs" / f"{len(pipelines):02d}.trec", runs[name], name)
        result = evaluate(qrels, runs[name], measures)
        values = {m: result.per_query[m] for m in result.per_query}
        if getattr(stage, "ann_recall", None) is not None:
            values["ann_recall@10"] = {q: float(np.clip(rng.normal(stage.ann_recall, 0.03), 0, 1))
                                       for q in qids}
        for measure, by_qid in values.items():
            per_query += [(name, q, measure, v) for q, v in by_qid.items()]
            metrics.append((name, measure, sum(by_qid.values()) / len(by_qid)))
        total_ms = stage.latency_ms + (0 if isinstance(stage, Rerank) else 0.2)
        stage_name = "rerank" if isinstance(stage, Rerank) else "first_stage"
        for st, ms in ((stage_name, stage.latency_ms), ("total", total_ms)):
            timings += [(name, st, "single", "p50_ms", ms), (name, st, "single", "p95_ms", ms * 1.6),
                        (name, st, "single", "p99_ms", ms * 2.3),
                        (name, st, "single", "qps", 1000.0 / ms),
                        (name, st, "single", "n_queries", float(min(100, n_queries)))]
        timings.append((name, "total", "batch", "qps", 4000.0 / total_ms))
        if isinstance(stage, FirstStage):
            timings += [(name, "index", "build", "wall_s", 3.0 + 40 * stage.skill),
                        (name, "index", "build", "size_bytes", float(n_docs * 1536)),
                        (name, "index", "build", "peak_rss_delta_bytes", float(n_docs * 4096))]
            pipelines[name] = {"status": "ok", "stages": [f"retriever:{name}"], "models": {},
                               "reason": None, **({"sweep": stage.sweep} if stage.sweep else {})}
        else:
            pipelines[name] = {"status": "ok", "parent": stage.parent, "models": {"ce": "tiny"},
                               "stages": [f"retriever:{stage.parent}",
                                          f"reranker:{stage.reranker}@{stage.depth}"],
                               "reason": None}
    for name, reason in failed.items():
        pipelines[name] = {"status": "failed", "stages": [f"retriever:{name}"], "models": {},
                           "reason": reason}

    atomic.write_text(out / "metrics.csv", _csv(metrics, ("pipeline", "measure", "value")))
    atomic.write_text(out / "per_query.csv",
                      _csv(per_query, ("pipeline", "qid", "measure", "value")))
    atomic.write_text(out / "timings.csv",
                      _csv(timings, ("pipeline", "stage", "mode", "stat", "value")))
    atomic.write_json(out / "metadata.json", {
        "run_name": run_name, "created_utc": "2026-01-01T00:00:00Z", "config_hash": "ab12" * 16,
        "git_commit": "0123456789abcdef0123456789abcdef01234567", "git_dirty": False,
        "environment": {"python": "3.11.7", "packages": {"numpy": np.__version__, "torch": "2.13.0"},
                        "cpu": "Synthetic CPU", "cores": 2, "device": "cpu", "threads": 2,
                        "platform": "Linux"},
        "dataset": {"name": "synthetic", "split": "test", "n_docs": n_docs,
                    "n_queries": n_queries, "checksums": {"corpus.jsonl": "ef34" * 16},
                    "warnings": []},
        "pipelines": pipelines})
    atomic.write_text(out / "config.yaml", f"name: synthetic\nseed: {seed}\n")
    atomic.write_text(out / "qrels.tsv", "query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{g}\n" for q, judged in qrels.items() for d, g in judged.items()))
    atomic.write_text(out / "queries.tsv", "".join(
        f"{q}\tsynthetic question number {i} about <topic & {i % 7}>\n" for i, q in enumerate(qids)))
    atomic.write_text(out / "titles.tsv", "".join(
        f"{d}\tDocument {d} on topic {i % 13}\n" for i, d in enumerate(doc_ids)))
    return out
