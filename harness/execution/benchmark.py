"""`harness run`: config → dataset → plan → results folder → summary table."""
from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from harness.config import Config, dump as dump_config
from harness.core.context import RunContext
from harness.datasets import load_dataset, load_ir_dataset
from harness.datasets.slice import slice_dataset
from harness.execution.environment import environment, git_state
from harness.evaluation.metrics import Evaluation, evaluate, parse_measures, validate_run
from harness.core.hashing import stable_hash
from harness.execution.runner import PipelineResult, execute, make_context
from harness.storage.results_folder import ResultsWriter
from harness.core.types import Dataset, Run
from harness.storage.results_folder import layout as L

log = logging.getLogger(__name__)


@dataclass
class BenchmarkOutcome:
    out_dir: Path
    results: list[PipelineResult]
    evaluations: dict[str, Evaluation]
    ctx: RunContext
    computed_nodes: list[str]


def with_extra(evaluation: Evaluation, extra: dict) -> Evaluation:
    """Add a stage's own per-query measures (e.g. ann_recall@10), averaged like the others
    over every judged query (a query the stage did not report scores 0)."""
    for measure, values in extra.items():
        per_query = {qid: float(values.get(qid, 0.0)) for qid in next(iter(
            evaluation.per_query.values()))}
        evaluation.per_query[measure] = per_query
        evaluation.aggregate[measure] = math.fsum(per_query.values()) / len(per_query)
    return evaluation


def without_identical_ids(run: Run) -> tuple[Run, int]:
    """A copy of `run` without results whose doc id is the query id, and how many were dropped."""
    kept = {qid: {d: s for d, s in docs.items() if d != qid} for qid, docs in run.items()}
    return kept, sum(len(docs) for docs in run.values()) - sum(len(d) for d in kept.values())


def pareto_fronts(results: list[PipelineResult], evaluations: dict[str, Evaluation]) -> dict:
    """The trade-off frontiers the report plots: ANN recall@10 vs single-query q/s of the index
    search alone (sweep points), and nDCG@10 vs end-to-end p95 latency (every pipeline)."""
    from harness.ann.pareto import pareto_frontier
    points = []
    for res in results:
        ev = evaluations.get(res.pipeline.name)
        if ev is None:
            continue
        total = {stat: v for stage, mode, stat, v in res.timings
                 if (stage, mode) == (L.TOTAL, L.SINGLE)}
        search = {stat: v for stage, mode, stat, v in res.timings
                  if (stage, mode) == (L.ANN_SEARCH, L.SINGLE)}
        points.append({"pipeline": res.pipeline.name, **ev.aggregate,
                       L.P95_MS: total.get(L.P95_MS, math.nan),
                       "search_qps": search.get(L.QPS, math.nan)})
    fronts = {}
    ann_points = [p for p in points if any(m.startswith("ann_recall@") for m in p)]
    if ann_points:
        recall = next(m for m in ann_points[0] if m.startswith("ann_recall@"))
        fronts[f"{recall}_vs_search_qps"] = [p["pipeline"] for p in pareto_frontier(
            ann_points, [(lambda p: p[recall], "max"), (lambda p: p["search_qps"], "max")])]
    if points and "nDCG@10" in points[0]:
        fronts["nDCG@10_vs_p95_ms"] = [p["pipeline"] for p in pareto_frontier(
            points, [(lambda p: p["nDCG@10"], "max"), (lambda p: p["p95_ms"], "min")])]
    return fronts


def add_ils(config: Config, dataset: Dataset, ctx: RunContext, runs: dict,
            evaluations: dict[str, Evaluation], pipelines_meta: dict) -> None:
    """`ILS@k` per pipeline from the diversity encoder's document vectors (the embedding cache a
    dense stage with that model shares). Its mean runs over the queries with >= 2 results; how
    many that is goes to metadata.json `pipelines.<name>.ils_queries`."""
    from harness.evaluation.diversity import ILS_PREFIX, ils, mean
    from harness.retrievers.dense import BiEncoderRetriever, DenseParams
    encoder = BiEncoderRetriever(DenseParams(model=config.diversity.model), ctx)
    _, arrays = encoder.document_arrays(dataset.corpus)
    rows = {d: i for i, d in enumerate(dataset.corpus)}
    for name, run in runs.items():
        for k in config.diversity.at:
            values = ils(run, arrays["vectors"], rows, k)
            evaluations[name].per_query[f"{ILS_PREFIX}{k}"] = values
            evaluations[name].aggregate[f"{ILS_PREFIX}{k}"] = mean(values)
            pipelines_meta[name].setdefault("ils_queries", {})[f"{ILS_PREFIX}{k}"] = len(values)


def filter_record(nodes, executor, dataset: Dataset, measures, ceilings: dict) -> dict:
    """metadata.json `pipelines.<name>.filter`: each filtered first stage's filter, how its
    backend applies it, the relevant documents it removes and the best scores a run can reach
    under it (the oracle ceiling: every allowed relevant document ranked first)."""
    from harness.filters.support import filter_mode
    out = []
    for node in nodes:
        key = stable_hash(node.filter)
        if key not in ceilings:
            qf = executor.query_filter(node)
            removed = qf.relevant_removed(dataset.qrels)
            oracle = evaluate(dataset.qrels, qf.oracle_run(dataset.qrels), measures).aggregate
            ceilings[key] = {"spec": node.filter,
                             "relevant_removed": sum(removed.values()),
                             "queries_with_relevant_removed": sum(1 for n in removed.values() if n),
                             "relevant_removed_per_query": {q: n for q, n in removed.items() if n},
                             "oracle_ceiling": oracle}
        out.append({"stage": node.label, "mode": filter_mode(node.spec, node.filter_where),
                    **ceilings[key]})
    return out[0] if len(out) == 1 else {"stages": out}


def short_of_k(run: Run, nodes, executor, k: int) -> int:
    """Queries with fewer results than min(k, the documents their filter allows)."""
    qf = executor.query_filter(nodes[0])
    return sum(1 for qid, docs in run.items() if len(docs) < min(k, qf.allowed_for(qid).size))


def prepare_dataset(config: Config, max_queries: Optional[int]) -> Dataset:
    spec = config.dataset
    dataset = (load_ir_dataset(spec.ir_datasets) if spec.ir_datasets is not None
               else load_dataset(spec.name, spec.split))
    if config.dataset.slice:
        s = config.dataset.slice
        dataset = slice_dataset(dataset, s.queries, s.extra_docs, s.seed)
    if max_queries is not None:
        dataset = dataset.subset(list(dataset.qrels)[:max_queries])
    return dataset


def dataset_key(config: Config, dataset: Dataset) -> str:
    """The content hash of the dataset a run evaluates on: part of every cache key."""
    return stable_hash({"checksums": dataset.checksums, "split": dataset.split,
                        "slice": config.dataset.slice and config.dataset.slice.model_dump(),
                        "queries": list(dataset.qrels)})


def default_out_dir(config: Config) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("results") / f"{config.name}-{stamp}"


def run_benchmark(config: Config, out_dir: Optional[Path] = None, max_queries: Optional[int] = None,
                  force: bool = False, cache_dir: Optional[Path] = None,
                  progress: bool = True) -> BenchmarkOutcome:
    started = time.time()
    # The code and config that run are the ones at the start: a commit made during a long run
    # must not be recorded as its provenance, nor trained-model folders hashed as its config.
    provenance = {"config_hash": hashlib.sha256(dump_config(config).encode("utf-8")).hexdigest(),
                  **git_state(Path(__file__).resolve().parent.parent)}
    measures = parse_measures(config.measures)
    dataset = prepare_dataset(config, max_queries)
    from harness.evaluation.diversity import check_alpha
    check_alpha(measures, dataset.subtopics, f"{dataset.name}/{dataset.split} qrels")
    data_key = dataset_key(config, dataset)
    out_dir = Path(out_dir) if out_dir else default_out_dir(config)
    writer = ResultsWriter(out_dir)
    writer.config(config)  # as written: trained models as `{train: NAME}` references
    trained = {}
    if config.train:  # before planning: the plan keys nodes by the trained folders
        from harness.training.stage import run_training
        config, trained = run_training(config, dataset, make_context(
            config, cache_dir, data_key, progress, planned=False))
    ctx = make_context(config, cache_dir, data_key, progress)
    log.info("dataset %s/%s: %d docs, %d judged queries -> %s", dataset.name, dataset.split,
             len(dataset.corpus), len(dataset.qrels), out_dir)

    results, executor = execute(config, dataset, ctx, out_dir, force)
    ceilings: dict[str, dict] = {}
    evaluations: dict[str, Evaluation] = {}
    timing_rows = []
    runs = {}
    pipelines_meta = {}
    for res in results:
        p = res.pipeline
        meta = {"status": L.FAILED if res.error else L.OK, "reason": res.error,
                "kind": p.stage, "tolerance_class": p.tolerance_class, "parent": p.parent,
                "sweep": p.sweep, "rerank_depth": p.leaf.depth,
                "stages": [n.label for n in p.leaf.chain()],
                "stage_stats": res.stage_stats, "models": res.models}
        if res.placement is not None:
            meta["placement"] = res.placement
        filtered = [n for n in p.leaf.chain() if n.filter is not None]
        if filtered:
            meta["filter"] = filter_record(filtered, executor, dataset, measures, ceilings)
        if res.run is not None and config.dataset.ignore_identical_ids:
            res.run, meta["identical_ids_removed"] = without_identical_ids(res.run)
        if res.run is not None:
            try:
                validate_run(res.run, f"pipeline {p.name!r}")
                evaluations[p.name] = with_extra(evaluate(dataset.qrels, res.run, measures,
                                                          dataset.subtopics), res.extra)
                meta["queries_without_results"] = evaluations[p.name].queries_without_results
                meta["result_flags"] = res.flags  # non-zero counts only: empty is clean
                if "filter" in meta:
                    meta["filter"]["short_of_k"] = short_of_k(res.run, filtered, executor, config.k)
                meta["run_file"] = writer.run(p.name, res.run)
                runs[p.name] = res.run
                timing_rows += [(p.name, *row) for row in res.timings]
                if trained:
                    from harness.training.stage import timing_rows as train_rows
                    timing_rows += [(p.name, *row) for row in train_rows(trained, res.models)]
            except Exception as exc:  # e.g. NaN scores: this pipeline fails, the others stand
                evaluations.pop(p.name, None)
                res.error = f"{type(exc).__name__}: {exc}"
                meta.update(status=L.FAILED, reason=res.error)
        pipelines_meta[p.name] = meta

    if config.diversity:
        add_ils(config, dataset, ctx, runs, evaluations, pipelines_meta)
    writer.metrics(evaluations)
    writer.pareto(pareto_fronts(results, evaluations))
    writer.timings(timing_rows)
    writer.dataset_files(dataset, runs)
    writer.metadata({
        "run_name": out_dir.name,
        "config_name": config.name,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_s": time.time() - started,
        **provenance,
        "environment": environment(ctx.device, ctx.threads),
        "executor": config.executor,
        "dataset": {"name": dataset.name, "split": dataset.split, "checksums": dataset.checksums,
                    "n_docs": len(dataset.corpus), "n_queries": len(dataset.qrels),
                    "stats": dataset.stats, "warnings": dataset.warnings},
        "measures": [str(m) for m in measures],
        "latency_queries": len(executor.latency_qids),
        "nodes": {"computed": len(executor.computed)},
        "pipelines": pipelines_meta,
        **({"trained_models": {n: {**t.metadata, "folder": str(t.folder), "reused": t.reused}
                               for n, t in trained.items()}} if trained else {}),
    })
    return BenchmarkOutcome(out_dir, results, evaluations, ctx, executor.computed)
