import sys
import threading
import types

import numpy as np
import psutil
import pytest

from harness.evaluation.timing import (PeakRSSDelta, batch_throughput, peak_rss_bytes,
                                       single_query_latency, thread_settings, time_call)


class FakeClock:
    """Advances only when the code under test says a call took time."""

    def __init__(self):
        self.now_ns = 1_000

    def __call__(self):
        return self.now_ns

    def spend_ms(self, ms):
        self.now_ns += int(ms * 1_000_000)


def test_time_call_returns_result_and_seconds():
    clock = FakeClock()
    result, seconds = time_call(lambda: clock.spend_ms(3.5) or "done", clock)
    assert result == "done" and seconds == pytest.approx(0.0035)


def test_single_query_latency_percentiles_exclude_warmup():
    clock = FakeClock()
    calls = []

    def search(item):
        calls.append(item)
        # Warm-up calls are slow (a cold cache); timed calls take `item` ms.
        clock.spend_ms(10_000 if len(calls) <= 3 else item)

    items = list(range(100, 0, -1))  # 100 .. 1 ms, order irrelevant to percentiles
    stats = single_query_latency(search, items, warmup=3, clock=clock)
    assert calls[:3] == [100, 99, 98] and calls[3:] == items  # 3 untimed, then each item once
    assert stats.n_queries == 100
    # numpy 'linear' on 1..100: position p/100 * 99 -> 50.5, 95.05, 99.01; mean 5050/100.
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p95_ms == pytest.approx(95.05)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.mean_ms == pytest.approx(50.5)
    assert stats.as_stats()["n_queries"] == 100


def test_single_query_latency_warmup_cycles_through_few_items():
    clock = FakeClock()
    calls = []
    stats = single_query_latency(lambda q: calls.append(q) or clock.spend_ms(2), ["a", "b"],
                                 warmup=5, clock=clock)
    assert calls == ["a", "b", "a", "b", "a", "a", "b"]
    assert (stats.n_queries, stats.p50_ms, stats.p99_ms) == (2, 2.0, 2.0)


def test_single_query_latency_rejects_no_items():
    with pytest.raises(ValueError):
        single_query_latency(lambda q: q, [], clock=FakeClock())


def test_batch_throughput():
    clock = FakeClock()
    result, seconds, qps = batch_throughput(lambda qs: clock.spend_ms(2_000) or len(qs),
                                            list(range(10)), clock)
    assert (result, seconds, qps) == (10, 2.0, 5.0)
    assert batch_throughput(len, [1, 2], FakeClock())[2] == float("inf")


def test_batch_throughput_times_the_batch_after_an_untimed_warm_up_call():
    clock = FakeClock()
    calls = []

    def batch(items):
        calls.append(list(items))
        clock.spend_ms(5_000 if len(calls) == 1 else 2_000)  # the first call is cold
        return len(items)

    result, seconds, qps = batch_throughput(batch, list(range(10)), clock, warmup=3)
    assert calls == [[0, 1, 2], list(range(10))]  # a warm-up batch of 3 items, then all of them
    assert (result, seconds, qps) == (10, 2.0, 5.0)
    with pytest.raises(ValueError, match="warmup"):
        batch_throughput(batch, [1], clock, warmup=-1)


def test_peak_rss_bytes_is_in_bytes():
    # The kernel's RSS counters are approximate (per-CPU batches), so the lifetime peak can read
    # a little below the current RSS; KiB read as bytes would be 1024 times too small.
    current = psutil.Process().memory_info().rss
    assert 0.9 * current <= peak_rss_bytes() < 64 * current


def test_peak_rss_delta_sees_transient_peak_from_sampler_thread():
    base = psutil.Process().memory_info().rss
    main = threading.current_thread()
    sampled = threading.Event()

    def fake_rss():
        if threading.current_thread() is main:
            return base  # at entry and exit: back to the baseline
        sampled.set()
        return base + 50_000_000  # what the sampler sees during the block

    with PeakRSSDelta(interval_s=0.001, current_rss=fake_rss) as probe:
        assert sampled.wait(timeout=30)
    assert probe.delta_bytes == 50_000_000


def test_peak_rss_delta_measures_real_allocation():
    import mmap
    size = 80 * 2**20
    with PeakRSSDelta() as probe:
        # A fresh anonymous mapping, every page touched: new resident memory. (np.ones could be
        # served from heap pages already resident after earlier tests freed theirs.)
        block = mmap.mmap(-1, size)
        block.write(b"x" * size)
    assert probe.delta_bytes >= 0.9 * size
    block.close()


def test_thread_settings_reads_env_and_loaded_libraries(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("MKL_NUM_THREADS", "many")
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(
        get_num_threads=lambda: 2, get_num_interop_threads=lambda: 1))
    settings = thread_settings()
    assert settings["OMP_NUM_THREADS"] == 3 and settings["MKL_NUM_THREADS"] is None
    assert settings["torch_threads"] == 2 and settings["torch_interop_threads"] == 1
