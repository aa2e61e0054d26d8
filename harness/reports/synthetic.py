"""Synthetic results folders for the report tests and the report-size benchmark.

Written through the runner's own `ResultsWriter`, with the pipeline names (`<entry>/<backend>[...]`
sweep points, `<parent>>><reranker>@<depth>`) and metadata.json entries `harness run` writes, so
a report cannot depend on anything the runner does not write. Seeded and realistic in shape: first
stages of different quality, ANN sweep points with `ann_recall@10`, two rerankers over `bm25` at
two depths and a failed pipeline. Metrics come from the runs through the harness's own
evaluation. Only pareto.json is left out (reports do not read it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from harness.execution.benchmark import with_extra
from harness.config import Config
from harness.evaluation.metrics import evaluate, parse_measures
from harness.core.hashing import stable_hash
from harness.core.registry import ANN, DETERMINISTIC, MODEL, loosest
from harness.storage.results_folder import ResultsWriter
from harness.storage.results_folder.layout import (BATCH, BUILD, FAILED, FIRST_STAGE, INDEX, MEAN_MS, N_QUERIES,
                                                   OK, P50_MS, P95_MS, P99_MS, PEAK_RSS_DELTA_BYTES, QPS, RERANK,
                                                   SINGLE, SIZE_BYTES, THREADS, TOTAL, WALL_S)
from harness.core.types import Dataset, Document, Qrels, Run, ranked

MEASURES = ("nDCG@10", "RR@10", "R@100")
ANN_RECALL = "ann_recall@10"
LATENCY_QUERIES = 100
# Tolerance class of a first stage by retriever type, as its plugin declares it (sweep points:
# ann), and the models a stage loads by type, as `pipelines.<name>.models` records them.
_CLASSES = {"bm25": DETERMINISTIC, "bm25s": DETERMINISTIC, "dense": DETERMINISTIC,
            "dpr": DETERMINISTIC}
_MODELS = {"dense": {"model": "sentence-transformers/all-MiniLM-L6-v2"},
           "dpr": {"question_model": "facebook/dpr-question_encoder-single-nq-base",
                   "context_model": "facebook/dpr-ctx_encoder-single-nq-base"},
           "ce": {"model": "cross-encoder/ms-marco-MiniLM-L-6-v2"},
           "colbert": {"model": "colbert-ir/colbertv2.0"}}


def _models(label: str, plugin: str) -> dict:
    return {label: {field: {"name": name, "fingerprint": stable_hash(name)}
                    for field, name in _MODELS[plugin].items()}} if plugin in _MODELS else {}


@dataclass(frozen=True)
class FirstStage:
    name: str
    retriever: str                # the plugin type (stage label `retriever:<type>`)
    skill: float                  # 0..1: how high relevant docs tend to rank
    latency_ms: float
    ann_recall: Optional[float] = None   # set for ANN sweep points
    sweep: Optional[str] = None          # their family, `<entry>/<backend>`


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


def sweep_point(entry: str, backend: str, params: str, skill: float, latency_ms: float,
                ann_recall: float) -> FirstStage:
    """An ANN sweep point named as the runner names it, e.g. `dense/hnsw[M=16,ef=64]`."""
    return FirstStage(f"{entry}/{backend}[{params}]", "dense", skill, latency_ms, ann_recall,
                      f"{entry}/{backend}")


DEFAULT_FIRST = (
    FirstStage("bm25", "bm25", 0.55, 2.0),
    FirstStage("dense-minilm", "dense", 0.6, 9.0),
    sweep_point("dense", "hnsw", "M=16,ef=16", 0.5, 0.3, 0.82),
    sweep_point("dense", "hnsw", "M=16,ef=64", 0.57, 0.6, 0.95),
    sweep_point("dense", "hnsw", "M=16,ef=256", 0.6, 1.6, 0.995),
    sweep_point("dense", "ivf", "nlist=64,nprobe=4", 0.52, 0.4, 0.80),
    sweep_point("dense", "ivf", "nlist=64,nprobe=16", 0.58, 1.5, 0.93),
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


def _stage_rows(stage: str, ms: float, n_queries: int) -> list[tuple]:
    """A query stage's timings.csv rows (pipeline column left out), as the runner writes them."""
    n_single = float(min(LATENCY_QUERIES, n_queries))
    return [(stage, BATCH, WALL_S, n_queries * ms / 4000), (stage, BATCH, QPS, 4000.0 / ms),
            (stage, BATCH, N_QUERIES, float(n_queries)), (stage, BATCH, THREADS, 2.0),
            (stage, SINGLE, P50_MS, ms), (stage, SINGLE, P95_MS, ms * 1.6),
            (stage, SINGLE, P99_MS, ms * 2.3), (stage, SINGLE, MEAN_MS, ms * 1.1),
            (stage, SINGLE, N_QUERIES, n_single), (stage, SINGLE, QPS, 1000.0 / (ms * 1.1))]


def _index_rows(stage: FirstStage, n_docs: int) -> list[tuple]:
    return [(INDEX, BUILD, WALL_S, 3.0 + 40 * stage.skill),
            (INDEX, BUILD, SIZE_BYTES, float(n_docs * 1536)),
            (INDEX, BUILD, PEAK_RSS_DELTA_BYTES, float(n_docs * 4096))]


def _config(name: str, first_stages, reranks, failed: dict, k: int, seed: int) -> Config:
    """The resolved config such a run comes from: one entry per first stage or sweep family."""
    entries: dict[str, dict] = {}
    for stage in first_stages:
        if stage.sweep:
            entry, backend = stage.sweep.rsplit("/", 1)
            spec = entries.setdefault(entry, {"name": entry, "retriever": {
                "type": stage.retriever, "index": []}})
            if {"type": backend} not in spec["retriever"]["index"]:
                spec["retriever"]["index"].append({"type": backend})
        else:
            entries[stage.name] = {"name": stage.name, "retriever": {"type": stage.retriever}}
    for stage in reranks:
        spec = entries[stage.parent].setdefault("rerank", {"type": stage.reranker, "depth": []})
        spec["depth"].append(stage.depth)
    for pipeline in failed:
        entries[pipeline] = {"name": pipeline, "retriever": {"type": pipeline}}
    return Config.model_validate({"name": name, "dataset": {"name": "synthetic"}, "k": k,
                                  "seed": seed, "measures": list(MEASURES),
                                  "timing": {"latency_queries": LATENCY_QUERIES},
                                  "pipelines": list(entries.values())})


def _dataset(rng, n_queries: int, n_docs: int) -> Dataset:
    doc_ids = [f"d{i}" for i in range(n_docs)]
    qids = [f"q{i}" for i in range(n_queries)]
    qrels: Qrels = {q: {str(d): int(rng.integers(1, 3))
                        for d in rng.choice(doc_ids, size=int(rng.integers(1, 4)), replace=False)}
                    for q in qids}
    corpus = {d: Document(d, f"Document {d} on topic {i % 13}", f"Text of {d}.")
              for i, d in enumerate(doc_ids)}
    queries = {q: f"synthetic question number {i} about <topic & {i % 7}>"
               for i, q in enumerate(qids)}
    return Dataset("synthetic", "test", corpus, queries, qrels, {"corpus.jsonl": "ef34" * 16})


def write_results(out: Path, n_queries: int = 40, n_docs: int = 400, depth: int = 100,
                  first_stages=DEFAULT_FIRST, reranks=DEFAULT_RERANK,
                  failed: dict[str, str] | None = None, seed: int = 0,
                  run_name: str = "synthetic-20260101T000000Z") -> Path:
    rng = np.random.default_rng(seed)
    out = Path(out)
    failed = {"colbert-plaid": "timeout after 600 s"} if failed is None else failed
    writer = ResultsWriter(out)
    writer.config(_config("synthetic", first_stages, reranks, failed, depth, seed))
    dataset = _dataset(rng, n_queries, n_docs)
    doc_ids = list(dataset.corpus)
    measures = parse_measures(MEASURES)
    runs: dict[str, Run] = {}
    evaluations, timings, pipelines = {}, [], {}
    for stage in (*first_stages, *reranks):
        is_rerank = isinstance(stage, Rerank)
        if is_rerank:
            parent = next(s for s in first_stages if s.name == stage.parent)
            run = _rerank_run(rng, dataset.qrels, runs[stage.parent], stage.depth, stage.skill)
            rows = [*_index_rows(parent, n_docs), *_stage_rows(FIRST_STAGE, parent.latency_ms,
                                                               n_queries),
                    *_stage_rows(RERANK, stage.latency_ms, n_queries)]
            total_ms = parent.latency_ms + stage.latency_ms
            labels = [f"retriever:{parent.retriever}", f"reranker:{stage.reranker}@{stage.depth}"]
            models = {**_models(labels[0], parent.retriever), **_models(labels[1], stage.reranker)}
            tolerance = loosest([MODEL, pipelines[stage.parent]["tolerance_class"]])
        else:
            run = _first_stage_run(rng, dataset.qrels, doc_ids, stage.skill, depth)
            rows = [*_index_rows(stage, n_docs), *_stage_rows(FIRST_STAGE, stage.latency_ms,
                                                              n_queries)]
            total_ms = stage.latency_ms
            labels = [f"retriever:{stage.retriever}"]
            models = _models(labels[0], stage.retriever)
            tolerance = ANN if stage.sweep else _CLASSES.get(stage.retriever, MODEL)
        runs[stage.name] = run
        extra = {}
        if not is_rerank and stage.ann_recall is not None:
            extra[ANN_RECALL] = {q: float(np.clip(rng.normal(stage.ann_recall, 0.03), 0, 1))
                                 for q in dataset.qrels}
        evaluations[stage.name] = with_extra(evaluate(dataset.qrels, run, measures), extra)
        timings += [(stage.name, *row) for row in (*rows, *_stage_rows(TOTAL, total_ms, n_queries))]
        pipelines[stage.name] = {
            "status": OK, "reason": None, "kind": RERANK if is_rerank else FIRST_STAGE,
            "tolerance_class": tolerance, "parent": stage.parent if is_rerank else None,
            "sweep": None if is_rerank else stage.sweep,
            "rerank_depth": stage.depth if is_rerank else None, "stages": labels,
            "stage_stats": {}, "models": models,
            "queries_without_results": evaluations[stage.name].queries_without_results,
            "result_flags": {}, "run_file": writer.run(stage.name, run)}
    for name, reason in failed.items():
        pipelines[name] = {"status": FAILED, "reason": reason, "kind": FIRST_STAGE,
                           "tolerance_class": MODEL, "parent": None, "sweep": None,
                           "rerank_depth": None, "stages": [f"retriever:{name}"],
                           "stage_stats": {}, "models": {}}

    writer.metrics(evaluations)
    writer.timings(timings)
    writer.dataset_files(dataset, runs)
    writer.metadata({
        "run_name": run_name, "config_name": "synthetic", "created_utc": "2026-01-01T00:00:00Z",
        "wall_s": 1.0, "config_hash": "ab12" * 16,
        "git_commit": "0123456789abcdef0123456789abcdef01234567", "git_dirty": False,
        "environment": {"python": "3.11.7", "packages": {"numpy": np.__version__, "torch": "2.13.0"},
                        "cpu": "Synthetic CPU", "cores": 2, "device": "cpu", "threads": 2,
                        "platform": "Linux"},
        "dataset": {"name": dataset.name, "split": dataset.split, "checksums": dataset.checksums,
                    "n_docs": n_docs, "n_queries": n_queries, "stats": {}, "warnings": []},
        "measures": [str(m) for m in measures], "latency_queries": LATENCY_QUERIES,
        "nodes": {"computed": len(runs)}, "pipelines": pipelines})
    return out
