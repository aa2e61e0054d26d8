"""Measurement helpers the runner wraps around each stage: wall time, single-query latency,
batch throughput, peak memory and the thread settings in effect.

Callers keep model loading and data I/O outside the functions they pass in. Clocks are injectable
(nanosecond integers, like time.perf_counter_ns) so the statistics can be tested exactly.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import psutil

Clock = Callable[[], int]  # monotonic nanoseconds


def time_call(fn: Callable[[], Any], clock: Clock = time.perf_counter_ns) -> tuple[Any, float]:
    """(fn(), wall seconds)."""
    start = clock()
    result = fn()
    return result, (clock() - start) / 1e9


@dataclass(frozen=True)
class LatencyStats:
    n_queries: int  # timed calls; warm-up calls are not among them
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float

    def as_stats(self) -> dict[str, float]:
        """The `stat -> value` rows of timings.csv (stat names carry their unit)."""
        return {"p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "p99_ms": self.p99_ms,
                "mean_ms": self.mean_ms, "n_queries": self.n_queries,
                "qps": 1000.0 / self.mean_ms if self.mean_ms > 0 else float("inf")}


def single_query_latency(fn: Callable[[Any], Any], items: Sequence, warmup: int = 5,
                         clock: Clock = time.perf_counter_ns) -> LatencyStats:
    """Call fn(item) once per item, one at a time, after `warmup` untimed calls.

    Warm-up calls reuse the first items (cycling when there are fewer) so that lazy
    initialisation, caches and JIT paths are paid before timing starts.
    """
    items = list(items)
    if not items:
        raise ValueError("single_query_latency needs at least one item")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    for i in range(warmup):
        fn(items[i % len(items)])
    durations_ns = []
    for item in items:
        start = clock()
        fn(item)
        durations_ns.append(clock() - start)
    ms = np.asarray(durations_ns, dtype=np.float64) / 1e6
    p50, p95, p99 = np.percentile(ms, [50, 95, 99], method="linear")
    return LatencyStats(len(items), float(p50), float(p95), float(p99), float(ms.mean()))


def batch_throughput(fn: Callable[[Sequence], Any], items: Sequence,
                     clock: Clock = time.perf_counter_ns, *,
                     warmup: int = 0) -> tuple[Any, float, float]:
    """(fn(items), wall seconds, items per second) for one timed call over the whole batch.

    With `warmup` > 0, one untimed call of fn on the first `warmup` items comes first (its result
    is discarded), so that a first forward pass, lazy initialisation or JIT compilation is not
    billed to the batch.
    """
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if warmup:
        fn(items[:warmup])
    result, seconds = time_call(lambda: fn(items), clock)
    # Only a coarse or fake clock reads 0 ns; inf then says "too fast to measure", not a number.
    qps = len(items) / seconds if seconds > 0 else float("inf")
    return result, seconds, qps


def peak_rss_bytes() -> int:
    """This process's lifetime peak resident set size (ru_maxrss: KiB on Linux, bytes on macOS)."""
    import resource  # POSIX only; imported here so the module still imports on Windows

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class PeakRSSDelta:
    """Context manager: how far resident memory rose above its level at entry during the block.

    ru_maxrss is a process-lifetime high-water mark, so alone it sees a block's peak only when
    that peak is a new lifetime high. A background thread therefore also samples the current RSS
    every `interval_s`, and a last sample is taken on exit. A short spike that sets no new
    lifetime high and falls between samples can be missed: the value is a lower bound.
    The sampler needs the GIL briefly each interval; use it around build steps, not around
    latency measurements.
    """

    def __init__(self, interval_s: float = 0.01,
                 current_rss: Optional[Callable[[], int]] = None):
        self.interval_s = interval_s
        self._current_rss = current_rss or (lambda: psutil.Process().memory_info().rss)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.delta_bytes: Optional[int] = None  # set on exit

    def __enter__(self) -> "PeakRSSDelta":
        self._baseline = self._current_rss()
        self._peak = self._baseline
        self._lifetime_peak_before = peak_rss_bytes()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)
        self._thread.start()
        return self

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._peak = max(self._peak, self._current_rss())

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        peak = max(self._peak, self._current_rss())
        lifetime_peak = peak_rss_bytes()
        if lifetime_peak > self._lifetime_peak_before:  # the block set a new high: it is exact
            peak = max(peak, lifetime_peak)
        self.delta_bytes = max(peak - self._baseline, 0)


def thread_settings() -> dict[str, Optional[int]]:
    """Thread counts in effect, for metadata: requested (env) and actual (libraries loaded).

    torch and faiss are read only when already imported: a run that never loaded them does not
    depend on their settings, and importing torch just to ask would cost seconds.
    """
    settings: dict[str, Optional[int]] = {}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(name)
        settings[name] = int(value) if value and value.isdigit() else None
    torch = sys.modules.get("torch")
    if torch is not None:
        settings["torch_threads"] = torch.get_num_threads()
        settings["torch_interop_threads"] = torch.get_num_interop_threads()
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        settings["faiss_omp_threads"] = faiss.omp_get_max_threads()
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # optional: it reports what BLAS/OpenMP pools actually use
        return settings
    for pool in threadpool_info():
        key = f"{pool['internal_api']}_threads"  # e.g. openblas_threads, mkl_threads, openmp_threads
        settings[key] = max(settings.get(key) or 0, pool["num_threads"])
    return settings
