"""Execute a plan: each node once, timed honestly, results written as they complete.

Per node: the plugin is built (model loading, untimed), then `index` (build), a batch call over
all judged queries after an untimed warm-up batch (throughput; its run is the one evaluated), its
stats for the record (untimed), and single-query calls over a seeded sample after warm-up
(latency). A pipeline's end-to-end latency is timed once every stage of it is built. A finished
node is saved under `nodes/` in the output folder with its key, so an interrupted run resumes
where it stopped. A node that raises is recorded as failed and the pipelines that need it are
reported failed; the others go on.
"""
from __future__ import annotations

import logging
import os
from itertools import groupby
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from harness.core import registry
from harness.config import Config
from harness.core.context import RunContext
from harness.evaluation.metrics import parse_measures, validate_run
from harness.evaluation.timing import PeakRSSDelta, batch_throughput, single_query_latency, time_call
from harness.storage.node_store import NodeRecord, NodeStore
from harness.execution.isolation import run_isolated
from harness.execution.plan import Node, Pipeline, Planner, entry_points
from harness.core.protocols import (BatchThreads, ExtraMeasures, FlagsResults, HasSubstages,
                                    LoadsModels, NeedsCorpus, NeedsQrels, Reports)
from harness.core.hashing import stable_hash
from harness.core.types import Dataset, Run
from harness.filters.allowed import QueryFilter, check as check_filter
from harness.storage.results_folder import layout as L

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    pipeline: Pipeline
    run: Optional[Run] = None
    timings: list[tuple[str, str, str, float]] = field(default_factory=list)  # stage, mode, stat, v
    error: Optional[str] = None
    extra: dict = field(default_factory=dict)  # extra per-query measures, e.g. ann_recall@10
    flags: dict = field(default_factory=dict)  # malformed-result counts of its first stages
    stage_stats: dict = field(default_factory=dict)  # {stage label: stats} (Reports)
    models: dict = field(default_factory=dict)  # {stage label: {field: {name, fingerprint}}}
    placement: Optional[dict] = None  # executor ray: the node, IP and device its group ran on


class NodeFailed(Exception):
    pass


class Executor:
    """Runs nodes on demand, memoised by key, keeping live plugins for end-to-end latency."""

    def __init__(self, config: Config, dataset: Dataset, ctx: RunContext, store: NodeStore,
                 compute: bool = True):
        self.config = config
        self.dataset = dataset
        self.ctx = ctx
        self.store = store
        self.compute = compute  # False: only load what a worker process saved
        self.missing_reason = "not computed"
        self.queries = dataset.judged_queries()
        rng = np.random.default_rng(config.seed)
        qids = list(self.queries)
        self.latency_qids = [qids[i] for i in rng.permutation(len(qids))[:config.timing.latency_queries]]
        self._records: dict[str, NodeRecord] = {}
        self._plugins: dict[str, object] = {}
        self.failures: dict[str, str] = {}
        self._index_stats: dict[str, dict] = {}
        self._filters: dict[str, QueryFilter] = {}
        self.computed: list[str] = []  # node keys computed (not resumed) in this run

    # -- plugins -----------------------------------------------------------------------------
    def plugin(self, node: Node):
        """The node's live plugin, built and indexed once (also for a node resumed from disk)."""
        # One instance per plugin settings: a reranker serves every depth and every parent (its
        # model loads once).
        cache_key = node.plugin_key
        if cache_key not in self._plugins:
            entry = registry.get(node.kind, node.spec.type)
            params = entry.params(**node.spec.plugin_params())
            instance = entry.factory(params, self.ctx)
            setup = (instance.index if node.kind == "retriever" else
                     instance.prepare if isinstance(instance, NeedsCorpus) else None)
            if setup is not None:
                with PeakRSSDelta() as rss:
                    _, seconds = time_call(lambda: setup(self.dataset.corpus))
                stats = instance.stage_stats() if isinstance(instance, Reports) else {}
                extra = {k: v for k, v in stats.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool)}
                self._index_stats[node.key] = {L.WALL_S: seconds,
                                               L.PEAK_RSS_DELTA_BYTES: rss.delta_bytes, **extra}
            if isinstance(instance, NeedsQrels):  # the oracle reranker scores by judgments
                instance.set_qrels(self.dataset.qrels)
            self._plugins[cache_key] = instance
        return self._plugins[cache_key]

    def query_filter(self, node: Node) -> QueryFilter:
        """The node's filter checked against the dataset, its allowed sets built once."""
        key = stable_hash(node.filter)
        if key not in self._filters:
            self._filters[key] = QueryFilter(node.filter, self.dataset, node.filter_where)
        return self._filters[key]

    # -- nodes -------------------------------------------------------------------------------
    def record(self, node: Node) -> NodeRecord:
        if node.key in self._records:
            return self._records[node.key]
        # A saved node wins over a recorded failure: with process isolation a node that failed
        # in one worker may have been computed and saved by a later one.
        stored = self.store.load(node.key)
        if stored is not None:
            if self.compute:
                log.info("resumed %s from %s", node.label, self.store.root)
            self._records[node.key] = stored
            return stored
        if node.key in self.failures:
            raise NodeFailed(self.failures[node.key])
        if not self.compute:
            for inp in node.inputs:  # name the failed input, not this node, as the cause
                self.record(inp)
            self.failures[node.key] = self.missing_reason
            raise NodeFailed(self.missing_reason)
        inputs = [self.record(inp) for inp in node.inputs]
        try:
            rec = self._compute(node, [r.run for r in inputs])
            # NaN/inf scores fail this node (named) and the pipelines built on it, nothing else.
            validate_run(rec.run, f"stage {node.label}")
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.error("%s failed: %s\n%s", node.label, reason, traceback.format_exc())
            self.failures[node.key] = reason
            raise NodeFailed(reason) from exc
        self.store.save(rec)
        self.computed.append(node.key)
        self._records[node.key] = rec
        return rec

    def _compute(self, node: Node, input_runs: list[Run]) -> NodeRecord:
        log.info("running %s", node.label)
        instance = self.plugin(node)
        timings = [(L.BUILD, stat, v) for stat, v in self._index_stats.pop(node.key, {}).items()]
        call = self._calls(node, instance, input_runs)
        qids = list(self.queries)
        warmup = self.config.timing.warmup
        run, seconds, qps = batch_throughput(call, qids, warmup=warmup)
        # Untimed, straight after the batch they describe (single-query calls come next).
        extra = instance.extra_measures(run) if isinstance(instance, ExtraMeasures) else {}
        flags = instance.result_flags() if isinstance(instance, FlagsResults) else {}
        stats = instance.stage_stats() if isinstance(instance, Reports) else {}
        models = instance.models() if isinstance(instance, LoadsModels) else {}
        threads = (instance.batch_threads() if isinstance(instance, BatchThreads)
                   else self.ctx.threads)
        timings += [(L.BATCH, L.WALL_S, seconds), (L.BATCH, L.QPS, qps),
                    (L.BATCH, L.N_QUERIES, len(qids)), (L.BATCH, L.THREADS, threads)]
        if self.latency_qids:
            lat = single_query_latency(lambda q: call([q]), self.latency_qids, warmup)
            timings += [(L.SINGLE, stat, v) for stat, v in lat.as_stats().items()]
        substages = []
        if isinstance(instance, HasSubstages):
            substages = instance.substage_timings(self.queries, self.config.k, self.latency_qids,
                                                  warmup)
        return NodeRecord(node.key, node.label, run, timings, extra, flags, substages, stats,
                          models)

    def _calls(self, node: Node, instance, input_runs: list[Run]) -> Callable[[list[str]], Run]:
        """The node's own stage over a list of query ids (the batch, a warm-up batch or one
        query), its inputs precomputed."""
        k = self.config.k
        queries = self.queries

        def texts(qids: list[str]) -> dict[str, str]:
            return {q: queries[q] for q in qids}

        def inputs(qids: list[str]) -> list[Run]:  # a query without results is still asked
            return [{q: r.get(q, {}) for q in qids} for r in input_runs]

        if node.kind == "retriever" and node.filter is not None:
            allowed = self.query_filter(node).allowed(queries)  # outside every timed call
            return lambda qids: instance.search_filtered(texts(qids), k,
                                                         {q: allowed[q] for q in qids})
        if node.kind == "retriever":
            return lambda qids: instance.search(texts(qids), k)
        if node.kind == "fuser":
            return lambda qids: instance.fuse(inputs(qids), k)
        corpus = self.dataset.corpus
        return lambda qids: instance.rerank(texts(qids), corpus, inputs(qids)[0], node.depth)

    def end_to_end(self, node: Node, qid: str) -> dict:
        """One query through the whole chain, every stage live: a pipeline's total latency."""
        instance = self.plugin(node)
        text = self.queries[qid]
        if node.kind == "retriever" and node.filter is not None:
            allowed = {qid: self.query_filter(node).allowed_for(qid)}
            return instance.search_filtered({qid: text}, self.config.k, allowed)[qid]
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
        firsts = [n for n in chain if n.stage == L.FIRST_STAGE]
        for node, rec in zip(chain, records):
            # Several first stages (fusion inputs) are told apart by their input position.
            suffix = f".{firsts.index(node) + 1}" if len(firsts) > 1 and node in firsts else ""
            if rec.stats:
                result.stage_stats[node.label + suffix] = rec.stats
            if rec.models:
                result.models[node.label + suffix] = rec.models
            for mode, stat, value in rec.timings:
                # A first stage's build is the `index` stage; a reranker's set-up stays its own.
                stage = L.INDEX if mode == L.BUILD and node.stage == L.FIRST_STAGE else node.stage
                result.timings.append((stage + suffix, mode, stat, value))
            result.timings += [(stage + suffix, mode, stat, value)
                               for stage, mode, stat, value in rec.substages]
        try:
            total = self._total_latency(pipeline)
        except NodeFailed as exc:
            result.run, result.error = None, str(exc)
            return result
        result.timings += [(L.TOTAL, mode, stat, v) for mode, stat, v in total]
        result.extra = records[-1].extra if len(chain) == 1 else {}
        result.flags = {f"{n.label}: {flag}": count for n, rec in zip(chain, records)
                        for flag, count in rec.flags.items() if count}
        return result

    def _total_latency(self, pipeline: Pipeline) -> list[tuple[str, str, float]]:
        chain = pipeline.leaf.chain()
        batch_s = sum(v for node in chain for mode, stat, v in self._records[node.key].timings
                      if mode == L.BATCH and stat == L.WALL_S)
        n = len(self.queries)
        rows = [(L.BATCH, L.WALL_S, batch_s), (L.BATCH, L.QPS, n / batch_s if batch_s else 0.0)]
        if not self.latency_qids:
            return rows
        if len(chain) == 1:  # one stage: its own single-query timings are the total
            return rows + [(m, s, v) for m, s, v in self._records[chain[0].key].timings
                           if m == L.SINGLE]
        key = f"total-{pipeline.leaf.key}"
        stored = self.store.load(key)
        if stored is None and not self.compute:
            raise NodeFailed(self.missing_reason)
        if stored is None:
            for node in chain:  # every stage built and indexed before the clock starts
                self.plugin(node)
            lat = single_query_latency(lambda q: self.end_to_end(pipeline.leaf, q),
                                       self.latency_qids, self.config.timing.warmup)
            stored = NodeRecord(key, f"total:{pipeline.name}", {},
                                [(L.SINGLE, s, v) for s, v in lat.as_stats().items()])
            self.store.save(stored)
        return rows + list(stored.timings)


def token_encoders(config: Config) -> frozenset:
    """Encoders whose document token embeddings a stage of this config needs."""
    from harness.core.protocols import NeedsTokenEmbeddings
    keys = set()
    for p in config.pipelines:
        # the planner's points: `sweep:` grids and ANN index grids expanded
        stages = [("fuser" if p.fuse else "retriever", point) for _, point, _ in entry_points(p)]
        stages += [("reranker", point) for _, point in (p.rerank.points() if p.rerank else [])]
        for kind, point in stages:
            params = registry.get(kind, point.type).params(**point.plugin_params())
            if isinstance(params, NeedsTokenEmbeddings):
                keys.add(params.token_encoder())
    return frozenset(keys)


def make_context(config: Config, cache_dir: Optional[Path], dataset_key: str,
                 progress: bool, planned: bool = True) -> RunContext:
    """`planned=False`: for the training stage, before `{train: NAME}` references are resolved
    (no stage's token encoders are known yet)."""
    from harness.core.context import default_cache_dir, resolve_device
    threads = config.threads or os.cpu_count() or 1
    return RunContext(cache_dir=Path(cache_dir) if cache_dir else default_cache_dir(),
                      device=resolve_device(config.device), threads=threads, seed=config.seed,
                      dataset_key=dataset_key, progress=progress,
                      deterministic=config.deterministic,
                      token_encoders=token_encoders(config) if planned else frozenset())


def _clear_nodes(store: NodeStore) -> None:
    """--force: forget every saved node of this output folder before the run starts."""
    import shutil
    if store.root.exists():
        trash = store.root.with_name(f".{store.root.name}.discarded")
        shutil.rmtree(trash, ignore_errors=True)
        store.root.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)


def run_group(config: Config, dataset: Dataset, ctx: RunContext, store_root: Path,
              group: list[Pipeline], plugin_modules: list[str]) -> tuple[list[str], dict]:
    """A worker's job: one config entry's pipelines, saved to the node store as they finish."""
    import importlib
    for module in plugin_modules:  # plugins the parent registered (--plugins, entry points)
        importlib.import_module(module)
    worker = Executor(config, dataset, ctx, NodeStore(store_root))
    for p in group:
        worker.run_pipeline(p)
    return worker.computed, worker.failures


def group_limits(config: Config, group: list[Pipeline]) -> tuple[Optional[float], Optional[int]]:
    """The timeout (s) and memory cap (bytes) of a config entry's worker."""
    spec = next(p for p in config.pipelines if p.name == group[0].group)
    cap_mb = spec.memory_cap_mb or config.memory_cap_mb
    return spec.timeout_s or config.timeout_s, cap_mb * 2**20 if cap_mb else None


def _run_local(config: Config, dataset: Dataset, ctx: RunContext, store: NodeStore,
               groups: list[list[Pipeline]]):
    """Each group in a forkserver worker, one after another: (outcome, placement) per group."""
    for group in groups:
        yield run_isolated(run_group, (config, dataset, ctx, store.root, group,
                                       registry.plugin_modules()),
                           *group_limits(config, group)), None


def execute(config: Config, dataset: Dataset, ctx: RunContext, out_dir: Path,
            force: bool = False) -> tuple[list[PipelineResult], Executor]:
    """Run every pipeline. With `isolation: process` each config entry (a pipeline with its
    rerank depths or sweep points) runs in a worker process under its timeout and memory cap
    (with `executor: ray`, a worker inside a Ray task, anywhere in the cluster); the parent then
    reads what the worker saved, so a worker that dies loses only its group."""
    parse_measures(config.measures)
    pipelines = Planner(config, ctx).pipelines()
    for node in {n.key: n for p in pipelines for n in p.leaf.chain() if n.filter}.values():
        check_filter(node.filter, dataset, node.filter_where)  # before any stage does work
    store = NodeStore(out_dir / "nodes")
    if force:
        _clear_nodes(store)
    if config.isolation == "none":
        executor = Executor(config, dataset, ctx, store)
        return [executor.run_pipeline(p) for p in pipelines], executor
    groups = [list(group) for _, group in groupby(pipelines, key=lambda p: p.group)]
    if config.executor == "ray":
        from harness.execution.ray_executor import run_groups
        outcomes = run_groups(config, dataset, ctx, store, groups)
    else:
        outcomes = _run_local(config, dataset, ctx, store, groups)
    loader = Executor(config, dataset, ctx, store, compute=False)
    results: list[PipelineResult] = []
    for group, (outcome, placement) in zip(groups, outcomes):
        if outcome.failure is None:
            computed, failures = outcome.value
            loader.computed += computed
            loader.failures.update(failures)
            loader.missing_reason = "not computed"
        else:
            log.error("pipeline group %s failed: %s", group[0].group, outcome.failure)
            loader.missing_reason = outcome.failure.splitlines()[0]
        for p in group:
            results.append(loader.run_pipeline(p))
            results[-1].placement = placement
    return results, loader
