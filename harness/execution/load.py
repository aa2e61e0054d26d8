"""`harness load`: concurrent clients against one pipeline's ANN index.

For each level (default 1, 2, 4, 8 clients) N client processes send the pipeline's query stream
(its queries, encoded once beforehand: the load is on the index, not on the query encoder), one
query per request, for a fixed duration, all starting together. Every request's latency goes into
an HDR histogram (1 us .. 60 s, 3 significant digits); the level's percentiles are over all
requests of all clients, its QPS is requests / the longest client's wall time, and a request that
raises is counted under `errors` (never dropped, never in the latencies).

A backend with a server (pgvector) gives each client its own connection to the one index built
here (`shared_client()`); an in-process backend (faiss, hnswlib, Annoy, LanceDB) is rebuilt in each
client process from the same vectors: one index per client, each searched single-threaded.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from harness.core.errors import ConfigError
from harness.storage.results_folder.layout import LOAD as STAGE

log = logging.getLogger(__name__)

DEFAULT_CLIENTS = (1, 2, 4, 8)
MAX_CLIENTS = 64
MAX_DURATION_S = 600.0
LOWEST_US, HIGHEST_US, SIGNIFICANT = 1, 60_000_000, 3
SETUP_TIMEOUT_S = 600.0


@dataclass
class LoadLevel:
    clients: int
    duration_s: float
    requests: int
    errors: int
    qps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    oversubscribed: bool           # more clients than CPU cores
    first_error: Optional[str] = None

    def timing_rows(self) -> list[tuple[str, str, str, float]]:
        """timings.csv rows (stage `load`, mode `clients=N`)."""
        mode = f"clients={self.clients}"
        stats = {"qps": self.qps, "p50_ms": self.p50_ms, "p95_ms": self.p95_ms,
                 "p99_ms": self.p99_ms, "mean_ms": self.mean_ms, "n_queries": self.requests,
                 "errors": self.errors, "clients": self.clients, "wall_s": self.duration_s}
        return [(STAGE, mode, stat, float(v)) for stat, v in stats.items()]


@dataclass
class LoadResult:
    pipeline: str
    backend: str
    cores: int
    levels: list[LoadLevel] = field(default_factory=list)


def check_levels(clients: Sequence[int], duration_s: float) -> None:
    if not clients:
        raise ConfigError("load: --clients needs at least one level")
    bad = [c for c in clients if not 1 <= c <= MAX_CLIENTS]
    if bad:
        raise ConfigError(f"load: --clients {bad[0]} out of range 1..{MAX_CLIENTS}")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ConfigError(f"load: --duration {duration_s} out of range (0, {MAX_DURATION_S:.0f}] s")


def _client(target: Any, Q: np.ndarray, k: int, offset: int, duration_s: float,
            ready, start, results) -> None:
    """One client process: open/build its index, report ready, wait for the start, then send
    one query per request until the duration is over."""
    from hdrh.histogram import HdrHistogram
    try:
        search = _open(target)
    except Exception as exc:
        ready.put(("failed", f"{type(exc).__name__}: {exc}"))
        return
    ready.put(("ready", None))
    start.wait()
    hist = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT)
    errors, first_error, i = 0, None, offset
    began = time.perf_counter_ns()
    deadline = began + int(duration_s * 1e9)
    now = began
    while now < deadline:
        q = Q[i % len(Q):i % len(Q) + 1]
        i += 1
        t0 = time.perf_counter_ns()
        try:
            search(q, k)
        except Exception as exc:
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            now = time.perf_counter_ns()
            continue
        now = time.perf_counter_ns()
        hist.record_value(min(max((now - t0) // 1000, LOWEST_US), HIGHEST_US))
    results.put((hist.encode(), errors, first_error, (now - began) / 1e9))


def _open(target: Any):
    """The search function of a client: a shared server client, or an index built here."""
    kind, payload = target
    if kind == "shared":
        client = payload.open()
        return client.search
    from harness.core import registry
    from harness.core.context import RunContext
    backend, params, vectors_path, cache_dir = payload
    plugin = registry.get("ann", backend)
    index = plugin.factory(plugin.params(**params), RunContext(cache_dir=Path(cache_dir), threads=1))
    index.build(np.load(vectors_path, mmap_mode="r"))
    index.set_search_params(**{f: params[f] for f in plugin.params.search_fields()})
    return index.search


def run_level(target: Any, Q: np.ndarray, k: int, clients: int, duration_s: float) -> LoadLevel:
    from hdrh.histogram import HdrHistogram
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited threads or OpenMP state
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_client, daemon=True,
                         args=(target, Q, k, c * len(Q) // clients, duration_s, ready, start, results))
             for c in range(clients)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            state, reason = ready.get(timeout=SETUP_TIMEOUT_S)
            if state != "ready":
                raise RuntimeError(f"a load client failed to start: {reason}")
        start.set()
        merged = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT)
        errors, first_error, walls = 0, None, []
        for _ in procs:
            encoded, errs, first, wall = results.get(timeout=duration_s + 120)
            merged.decode_and_add(encoded)
            errors += errs
            first_error = first_error or first
            walls.append(wall)
        for p in procs:
            p.join(timeout=30)
    finally:
        for p in procs:  # a client stuck past its duration is stopped: the level is bounded
            if p.is_alive():
                p.kill()
                p.join()
    n = merged.get_total_count()
    wall = max(walls)
    ms = lambda us: us / 1000.0  # noqa: E731
    return LoadLevel(clients, wall, int(n), errors, n / wall if wall > 0 else 0.0,
                     ms(merged.get_value_at_percentile(50)), ms(merged.get_value_at_percentile(95)),
                     ms(merged.get_value_at_percentile(99)), ms(merged.get_mean_value()),
                     clients > (os.cpu_count() or 1), first_error)


def client_target(index: Any, backend: str, params: dict, vectors: np.ndarray,
                  workdir: Path, cache_dir: Path) -> tuple[str, Any]:
    """What each client process needs to search: the server index's own client when it has one,
    else the recipe to build the same index in-process (vectors written once for all clients)."""
    if hasattr(index, "shared_client"):
        return "shared", index.shared_client()
    path = workdir / "vectors.npy"
    np.save(path, np.ascontiguousarray(vectors, dtype=np.float32))
    return "build", (backend, params, str(path), str(cache_dir))


def run_load(retriever: Any, queries: Sequence[str], k: int, pipeline: str,
             clients: Sequence[int] = DEFAULT_CLIENTS, duration_s: float = 10.0) -> LoadResult:
    """Load levels on an indexed VectorRetriever (`retriever.index(corpus)` already called)."""
    check_levels(clients, duration_s)
    index = getattr(retriever, "_index", None)
    if index is None:
        raise ConfigError(f"load: pipeline {pipeline!r} has no ANN index to load; `harness load` "
                          "runs first-stage embedding retrievers (dense, dpr)")
    spec = retriever.index_spec.resolved()
    params = {**spec["build"], **spec["search"]}
    Q = np.ascontiguousarray(retriever.encode_queries(list(queries)), dtype=np.float32)
    depth = min(k, len(retriever._doc_ids))
    cores = os.cpu_count() or 1
    result = LoadResult(pipeline, spec["type"], cores)
    with tempfile.TemporaryDirectory(prefix="harness-load-") as workdir:
        target = client_target(index, spec["type"], params, retriever._vectors, Path(workdir),
                               retriever.ctx.cache_dir)
        for n in clients:
            if n > cores:
                log.warning("load: %d clients on %d CPU cores: clients (and the server) share "
                            "cores, so QPS stops scaling and latency includes waiting", n, cores)
            level = run_level(target, Q, depth, n, duration_s)
            log.info("load %s: %d clients: %.0f q/s, p50 %.3f ms, p99 %.3f ms, %d errors",
                     pipeline, n, level.qps, level.p50_ms, level.p99_ms, level.errors)
            result.levels.append(level)
    return result


def load_into_folder(config_path: Path, out: Path, pipeline: str,
                     clients: Sequence[int] = DEFAULT_CLIENTS, duration_s: float = 10.0,
                     cache_dir: Optional[Path] = None, max_queries: Optional[int] = None
                     ) -> LoadResult:
    """`harness load`: load levels on `pipeline` of the config, added to the results folder `out`
    of a `harness run` of the same config: timings.csv gets the stage `load` rows (replacing that
    pipeline's earlier ones) and load.json the levels with their warnings, so the folder's report
    plots them."""
    from harness.config import load as load_config
    from harness.core import registry
    from harness.execution.benchmark import dataset_key, prepare_dataset
    from harness.execution.plan import Planner
    from harness.execution.runner import make_context
    from harness.storage.atomic import write_json
    from harness.storage.results_folder import ResultsWriter, load_results
    from harness.storage.results_folder import layout as L

    check_levels(clients, duration_s)
    config = load_config(config_path)
    out = Path(out)
    if not (out / L.METADATA).exists():
        raise ConfigError(f"load: {out} is not a results folder; run `harness run {config_path} "
                          f"--out {out}` first (the load levels are added to it)")
    folder = load_results(out)
    if folder.metadata.get("config_name") != config.name:
        raise ConfigError(f"load: {out} holds a run of config {folder.metadata.get('config_name')!r}, "
                          f"not {config.name!r}")
    dataset = prepare_dataset(config, max_queries)
    ctx = make_context(config, cache_dir, dataset_key(config, dataset), progress=False)
    found = {p.name: p for p in Planner(config, ctx).pipelines()}
    if pipeline not in found:
        raise ConfigError(f"load: no pipeline {pipeline!r} in {config_path}; choices: "
                          f"{', '.join(found)}")
    leaf = found[pipeline].leaf
    if leaf.kind != "retriever":
        raise ConfigError(f"load: pipeline {pipeline!r} is a {leaf.stage} pipeline; `harness load` "
                          "runs a first-stage embedding retriever's ANN index")
    plugin = registry.get("retriever", leaf.spec.type)
    retriever = plugin.factory(plugin.params(**leaf.spec.plugin_params()), ctx)
    retriever.index(dataset.corpus)
    result = run_load(retriever, list(dataset.judged_queries().values()), config.k, pipeline,
                      clients, duration_s)
    rows = [(r.pipeline, r.stage, r.mode, r.stat, r.value) for r in folder.timings
            if not (r.pipeline == pipeline and r.stage == STAGE)]
    rows += [(pipeline, *row) for level in result.levels for row in level.timing_rows()]
    ResultsWriter(out).timings(rows)
    path = out / "load.json"
    record = _read_json(path)
    record[pipeline] = {"backend": result.backend, "cores": result.cores,
                        "duration_s": duration_s, "levels": [vars(lv) for lv in result.levels]}
    write_json(path, record)
    return result


def _read_json(path: Path) -> dict:
    import json
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
