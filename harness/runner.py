"""Execute a plan: each node once, timed honestly, results written as they complete.

Per node: the plugin is built (model loading, untimed), then `index` (build), a batch call over
all judged queries (throughput; its run is the one evaluated) and single-query calls over a seeded
sample after warm-up (latency). A finished node is saved under `nodes/` in the output folder with
its key, so an interrupted run resumes where it stopped. A node that raises is recorded as failed
and the pipelines that need it are reported failed; the others go on.
"""
from __future__ import annotations

import logging
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import registry
from .config import Config
from .context import RunContext
from .evaluation.metrics import parse_measures
from .evaluation.timing import PeakRSSDelta, batch_throughput, single_query_latency, time_call
from .node_store import NodeRecord, NodeStore
from .plan import Node, Pipeline, Planner
from .types import Dataset, Run

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    pipeline: Pipeline
    run: Optional[Run] = None
    timings: list[tuple[str, str, str, float]] = field(default_factory=list)  # stage, mode, stat, v
    error: Optional[str] = None
    stats: dict = field(default_factory=dict)


class NodeFailed(Exception):
    pass


class Executor:
    """Runs nodes on demand, memoised by key, keeping live plugins for end-to-end latency."""

    def __init__(self, config: Config, dataset: Dataset, ctx: RunContext, store: NodeStore,
                 force: bool = False):
        self.config = config
        self.dataset = dataset
        self.ctx = ctx
        self.store = store
        self.force = force
        self.queries = dataset.judged_queries()
        rng = np.random.default_rng(config.seed)
        qids = list(self.queries)
        self.latency_qids = [qids[i] for i in rng.permutation(len(qids))[:config.timing.latency_queries]]
        self._records: dict[str, NodeRecord] = {}
        self._plugins: dict[str, object] = {}
        self._failures: dict[str, str] = {}
        self._index_stats: dict[str, dict] = {}
        self.computed: list[str] = []  # node keys computed (not resumed) in this run

    # -- plugins -----------------------------------------------------------------------------
    def plugin(self, node: Node):
        """The node's live plugin, built and indexed once (also for a node resumed from disk)."""
        cache_key = node.key if node.kind != "reranker" else f"reranker:{node.inputs[0].key}:" \
            f"{node.spec.model_dump_json(exclude={'depth'})}"
        if cache_key not in self._plugins:
            entry = registry.get(node.kind, node.spec.type)
            params = entry.params(**node.spec.plugin_params())
            instance = entry.factory(params, self.ctx)
            if node.kind == "retriever":
                with PeakRSSDelta() as rss:
                    _, seconds = time_call(lambda: instance.index(self.dataset.corpus))
                extra = {k: v for k, v in getattr(instance, "stats", {}).items()
                         if isinstance(v, (int, float))}
                self._index_stats[node.key] = {"wall_s": seconds,
                                               "peak_rss_delta_bytes": rss.delta_bytes, **extra}
            set_qrels = getattr(instance, "set_qrels", None)
            if callable(set_qrels):  # the oracle reranker scores by judgments
                set_qrels(self.dataset.qrels)
            self._plugins[cache_key] = instance
        return self._plugins[cache_key]

    # -- nodes -------------------------------------------------------------------------------
    def record(self, node: Node) -> NodeRecord:
        if node.key in self._failures:
            raise NodeFailed(self._failures[node.key])
        if node.key in self._records:
            return self._records[node.key]
        inputs = [self.record(inp) for inp in node.inputs]
        stored = None if self.force else self.store.load(node.key)
        if stored is not None:
            log.info("resumed %s from %s", node.label, self.store.root)
            self._records[node.key] = stored
            return stored
        try:
            rec = self._compute(node, [r.run for r in inputs])
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.error("%s failed: %s\n%s", node.label, reason, traceback.format_exc())
            self._failures[node.key] = reason
            raise NodeFailed(reason) from exc
        self.store.save(rec)
        self.computed.append(node.key)
        self._records[node.key] = rec
        return rec

    def _compute(self, node: Node, input_runs: list[Run]) -> NodeRecord:
        log.info("running %s", node.label)
        instance = self.plugin(node)
        timings = [("build", stat, v) for stat, v in self._index_stats.pop(node.key, {}).items()]
        batch_fn, one_fn = self._calls(node, instance, input_runs)
        qids = list(self.queries)
        run, seconds, qps = batch_throughput(batch_fn, qids)
        timings += [("batch", "wall_s", seconds), ("batch", "qps", qps),
                    ("batch", "n_queries", len(qids)), ("batch", "threads", self.ctx.threads)]
        if self.latency_qids:
            lat = single_query_latency(one_fn, self.latency_qids, self.config.timing.warmup)
            timings += [("single", stat, v) for stat, v in lat.as_stats().items()]
        return NodeRecord(node.key, node.label, run, timings)

    def _calls(self, node: Node, instance, input_runs: list[Run]) -> tuple[Callable, Callable]:
        """(batch over qids, one qid) closures for the node's own stage, inputs precomputed."""
        k = self.config.k
        queries = self.queries
        if node.kind == "retriever":
            return (lambda qids: instance.search({q: queries[q] for q in qids}, k),
                    lambda q: instance.search({q: queries[q]}, k))
        if node.kind == "fuser":
            return (lambda qids: instance.fuse(input_runs, k),
                    lambda q: instance.fuse([{q: r.get(q, {})} for r in input_runs], k))
        corpus = self.dataset.corpus
        parent = input_runs[0]
        return (lambda qids: instance.rerank(queries, corpus, parent, node.depth),
                lambda q: instance.rerank({q: queries[q]}, corpus, {q: parent.get(q, {})},
                                          node.depth))

    def end_to_end(self, node: Node, qid: str) -> dict:
        """One query through the whole chain, every stage live: a pipeline's total latency."""
        instance = self.plugin(node)
        text = self.queries[qid]
        if node.kind == "retriever":
            return instance.search({qid: text}, self.config.k)[qid]
        results = [{qid: self.end_to_end(inp, qid)} for inp in node.inputs]
        if node.kind == "fuser":
            return instance.fuse(results, self.config.k)[qid]
        return instance.rerank({qid: text}, self.dataset.corpus, results[0], node.depth)[qid]

    # -- pipelines ---------------------------------------------------------------------------
    def run_pipeline(self, pipeline: Pipeline) -> PipelineResult:
        result = PipelineResult(pipeline)
        try:
            chain = pipeline.leaf.chain()
            records = [self.record(node) for node in chain]
        except NodeFailed as exc:
            result.error = str(exc)
            return result
        result.run = records[-1].run
        for node, rec in zip(chain, records):
            stage = node.stage
            for mode, stat, value in rec.timings:
                result.timings.append(("index" if mode == "build" else stage, mode, stat, value))
        total = self._total_latency(pipeline)
        result.timings += [("total", mode, stat, v) for mode, stat, v in total]
        return result

    def _total_latency(self, pipeline: Pipeline) -> list[tuple[str, str, float]]:
        chain = pipeline.leaf.chain()
        batch_s = sum(v for node in chain for mode, stat, v in self._records[node.key].timings
                      if mode == "batch" and stat == "wall_s")
        n = len(self.queries)
        rows = [("batch", "wall_s", batch_s), ("batch", "qps", n / batch_s if batch_s else 0.0)]
        if not self.latency_qids:
            return rows
        if len(chain) == 1:  # one stage: its own single-query timings are the total
            return rows + [(m, s, v) for m, s, v in self._records[chain[0].key].timings
                           if m == "single"]
        key = f"total:{pipeline.leaf.key}"
        stored = None if self.force else self.store.load(key)
        if stored is None:
            lat = single_query_latency(lambda q: self.end_to_end(pipeline.leaf, q),
                                       self.latency_qids, self.config.timing.warmup)
            stored = NodeRecord(key, f"total:{pipeline.name}", {},
                                [("single", s, v) for s, v in lat.as_stats().items()])
            self.store.save(stored)
        return rows + list(stored.timings)


def make_context(config: Config, cache_dir: Optional[Path], dataset_key: str,
                 progress: bool) -> RunContext:
    from .context import default_cache_dir, resolve_device
    threads = config.threads or os.cpu_count() or 1
    return RunContext(cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
                      device=resolve_device(config.device), threads=threads, seed=config.seed,
                      dataset_key=dataset_key, progress=progress)


def execute(config: Config, dataset: Dataset, ctx: RunContext, out_dir: Path,
            force: bool = False) -> tuple[list[PipelineResult], Executor]:
    parse_measures(config.measures)
    planner = Planner(config, ctx.dataset_key)
    executor = Executor(config, dataset, ctx, NodeStore(out_dir / "nodes"), force)
    results = [executor.run_pipeline(p) for p in planner.pipelines()]
    return results, executor
