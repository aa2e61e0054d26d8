"""Build x search sweeps (as ann-benchmarks' config.yml): each index is built once per build point,
then every search point is measured on it for fidelity (ann recall@k) and speed.

A sweep spec reads `{type: hnsw, build: {M: [16, 32], ef_construction: 200}, search: {ef: [16, 64]}}`:
a scalar is one value, a list is a grid axis.
"""
from __future__ import annotations

import itertools
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np

from harness.core import registry
from harness.core.context import RunContext
from harness.core.errors import ConfigError
from harness.evaluation.timing import (LatencyStats, PeakRSSDelta, batch_throughput,
                                       single_query_latency, time_call)
from harness.ann.base import ANNParams
from harness.ann.recall import ann_recall, result_flags


def expand_grid(grid: Optional[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """All combinations of a {param: value-or-list} mapping, in the mapping's key order."""
    grid = dict(grid or {})
    axes = [v if isinstance(v, (list, tuple)) else [v] for v in grid.values()]
    for name, axis in zip(grid, axes):
        if not axis:
            raise ConfigError(f"sweep parameter {name!r} has an empty list of values")
    return [dict(zip(grid, combo)) for combo in itertools.product(*axes)]


@dataclass(frozen=True)
class SweepSpec:
    backend: str
    build_points: list[dict[str, Any]]
    search_points: list[dict[str, Any]]


def parse_sweep(spec: Mapping[str, Any], where: str = "index", k: Optional[int] = None
                ) -> SweepSpec:
    """Validate a sweep spec against its backend's parameters before any work starts; with the
    run's `k`, also refuse a point the engine would search with other parameters at that depth
    (ANNParams.check_depth)."""
    unknown_keys = set(spec) - {"type", "build", "search"}
    if unknown_keys:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown_keys))}; "
                          "allowed: type, build, search")
    backend = spec.get("type", "flat")
    params_cls = registry.get("ann", backend).params
    for section, allowed in (("build", params_cls.build_fields()),
                             ("search", params_cls.search_fields())):
        unknown = sorted(set(spec.get(section) or {}) - set(allowed))
        if unknown:
            raise ConfigError(f"{where}.{section}: unknown parameter(s) {', '.join(unknown)} for "
                              f"ann {backend}; allowed: {', '.join(allowed) or 'none'}")
    build_points = expand_grid(spec.get("build"))
    search_points = expand_grid(spec.get("search"))
    for b, s in itertools.product(build_points, search_points):
        try:
            params = params_cls(**b, **s)
        except ValueError as exc:  # pydantic's message names the field and the constraint
            raise ConfigError(f"{where}: invalid ann {backend} point {b | s}: {exc}") from None
        if k is not None:
            params.check_depth(k, where=f"{where}.search")
    return SweepSpec(backend, build_points, search_points)


def point_name(backend: str, params: Mapping[str, Any], prefix: str = "") -> str:
    """e.g. `dense-minilm/hnsw[M=16,efC=200,ef=64]`: parameters given explicitly, build ones first,
    each in the order its Params model declares it, long names shortened by the backend's ALIASES."""
    params_cls: type[ANNParams] = registry.get("ann", backend).params
    order = params_cls.build_fields() + params_cls.search_fields()
    parts = [f"{params_cls.ALIASES.get(name, name)}={params[name]}" for name in order
             if name in params and name not in params_cls.UNNAMED]
    label = f"{backend}[{','.join(parts)}]" if parts else backend
    return f"{prefix}/{label}" if prefix else label


@dataclass
class PointResult:
    name: str
    backend: str
    build_params: dict[str, Any]
    search_params: dict[str, Any]
    status: str = "ok"               # or "failed", with `reason`
    reason: Optional[str] = None
    build_s: float = float("nan")
    size_bytes: Optional[int] = None
    peak_rss_delta_bytes: Optional[int] = None
    latency: Optional[LatencyStats] = None
    batch_s: float = float("nan")
    batch_qps: float = float("nan")
    batch_threads: Optional[int] = None
    recall: float = float("nan")     # mean ann recall@k over the queries
    k: int = 10
    search_used: dict[str, Any] = field(default_factory=dict)  # ANNParams.check_depth at k
    flags: dict[str, int] = field(default_factory=dict)
    ids: Optional[np.ndarray] = field(default=None, repr=False)     # from the batch search
    scores: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def single_qps(self) -> float:
        return 1000.0 / self.latency.mean_ms if self.latency else float("nan")


@contextmanager
def faiss_threads(n: int):
    faiss = sys.modules.get("faiss")  # only a run that loaded faiss has its threads to set
    if faiss is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@dataclass
class SearchMeasurement:
    ids: np.ndarray                  # from the batch call
    scores: np.ndarray
    batch_s: float
    batch_qps: float
    threads: int                     # the batch's engine threads
    latency: Optional[LatencyStats]  # None without single items


def measure_search(index, Q: np.ndarray, k: int, single_items: list[np.ndarray], warmup: int,
                   threads: int) -> SearchMeasurement:
    """The index search alone, the one way every ANN point is timed (the runner's `ann_search`
    stage and the scaling sweep): single-query latency over `single_items` after `warmup`
    untimed calls, then one batch call over Q, after an untimed warm-up batch, whose ids and
    scores are kept. The only code between the clock reads is index.search.

    Single queries run with one engine thread (hnswlib and Annoy use one for a single query
    anyway): faiss would otherwise wake an OpenMP team per query, whose barrier stalls on a
    busy machine (seen: flat at 10k went from thousands to ~100 q/s with 2 threads under load).
    The batch runs on `threads` (a backend with its own thread setting records that instead).
    """
    latency = None
    if single_items:
        with faiss_threads(1):
            latency = single_query_latency(lambda q: index.search(q, k), single_items,
                                           warmup=warmup)
    with faiss_threads(threads):
        (ids, scores), batch_s, batch_qps = batch_throughput(
            lambda qs: index.search(qs, k), Q, warmup=warmup)
    return SearchMeasurement(ids, scores, batch_s, batch_qps,
                             getattr(index, "threads", threads), latency)


def run_sweep(backend_name: str, build_grid: list[dict[str, Any]], search_grid: list[dict[str, Any]],
              X: np.ndarray, Q: np.ndarray, k: int, exact_ids: np.ndarray, exact_scores: np.ndarray,
              ctx: RunContext, latency_queries: Optional[int] = None, warmup: int = 20,
              prefix: str = "", on_point: Optional[Callable[[PointResult], None]] = None
              ) -> list[PointResult]:
    """Measure every (build point, search point) of one backend on vectors X and queries Q.

    Q must be float32 and C-contiguous (the caller converts once, outside any timing). The
    exact neighbours are the caller's, computed once for all backends. A point that raises is
    recorded as failed with its reason and the sweep goes on; bad parameters, and points the
    engine would search differently at depth k, are refused (ConfigError) before any index is
    built. `on_point` sees each result as it completes.
    """
    plugin = registry.get("ann", backend_name)
    for b, s in itertools.product(build_grid, search_grid):  # fail fast on any bad point
        where = f"ann {backend_name} point {b | s}"
        try:
            params = plugin.params(**b, **s)
        except ValueError as exc:
            raise ConfigError(f"invalid {where}: {exc}") from None
        params.check_depth(k, where=f"{where}: search")
    n_single = len(Q) if latency_queries is None else min(latency_queries, len(Q))
    single_items = [Q[i:i + 1] for i in range(n_single)]  # sliced once, outside the timed loop
    results: list[PointResult] = []

    def emit(result: PointResult) -> None:
        results.append(result)
        if on_point:
            on_point(result)

    for build in build_grid:
        base = dict(build, **search_grid[0])
        try:
            index = plugin.factory(plugin.params(**base), ctx)
            with PeakRSSDelta() as rss:
                _, build_s = time_call(lambda: index.build(X))
            size = index.nbytes() if hasattr(index, "nbytes") else None
        except Exception as exc:  # isolate the failing build point; later ones still run
            for search in search_grid:
                emit(PointResult(point_name(backend_name, build | search, prefix), backend_name,
                                 build, search, status="failed", reason=f"build: {exc!r}", k=k))
            continue
        for search in search_grid:
            result = PointResult(point_name(backend_name, build | search, prefix), backend_name,
                                 build, search, build_s=build_s, size_bytes=size,
                                 peak_rss_delta_bytes=rss.delta_bytes, k=k,
                                 search_used=plugin.params(**build, **search).check_depth(k))
            try:
                index.set_search_params(**search)
                m = measure_search(index, Q, k, single_items, warmup, ctx.threads)
                result.ids, result.scores, result.latency = m.ids, m.scores, m.latency
                result.batch_s, result.batch_qps, result.batch_threads = \
                    m.batch_s, m.batch_qps, m.threads
                result.recall = float(ann_recall(result.ids, X, Q, exact_ids, exact_scores,
                                                 k).mean())
                result.flags = result_flags(result.ids, k)
            except Exception as exc:
                result.status, result.reason = "failed", f"search: {exc!r}"
            emit(result)
        del index  # free this build point's index before the next one is built
    return results
