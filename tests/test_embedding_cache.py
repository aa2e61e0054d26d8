import json
import pickle

import numpy as np
import pytest

from harness.core.context import Memo, RunContext
from harness.storage.embedding_cache import EmbeddingCache


def vectors(value=1.0, shape=(2, 3)):
    return {"vectors": np.full(shape, value, dtype=np.float32)}


def test_round_trip_and_hit_counting(tmp_path):
    cache = EmbeddingCache(tmp_path)
    calls = []
    compute = lambda: calls.append(1) or {"vectors": np.arange(6, dtype=np.float32).reshape(2, 3)}
    first = cache.get_or_compute("k1", compute, {"what": "documents"})
    second = cache.get_or_compute("k1", compute, {"what": "documents"})
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    assert (first.hit, second.hit) == (False, True)
    np.testing.assert_array_equal(first.arrays["vectors"], second.arrays["vectors"])


def test_a_hit_reports_the_cost_recorded_when_the_entry_was_computed(tmp_path):
    """Defect 9: the encode time is measured once, stored with the entry and reported again on
    every hit (a warm run reports the cold run's encode time, not ~0 or nothing)."""
    import time
    cold = EmbeddingCache(tmp_path).get_or_compute(
        "k", lambda: time.sleep(0.05) or vectors(), {"what": "documents"})
    assert cold.cost["wall_s"] >= 0.05 and cold.cost["peak_rss_delta_bytes"] >= 0
    warm = EmbeddingCache(tmp_path).get_or_compute("k", lambda: pytest.fail("recomputed"), {})
    assert warm.hit and warm.cost == cold.cost
    assert json.loads((tmp_path / "embeddings" / "k.json").read_text())["cost"] == cold.cost


def test_an_entry_without_a_recorded_cost_is_recomputed(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.save("k", vectors(), {}, cost={"wall_s": 1.0, "peak_rss_delta_bytes": 0})
    meta_path = tmp_path / "embeddings" / "k.json"
    meta = json.loads(meta_path.read_text())
    del meta["cost"]  # as the cache wrote entries before costs were recorded
    meta_path.write_text(json.dumps(meta))
    entry = cache.get_or_compute("k", lambda: vectors(2.0), {})
    assert not entry.hit and entry.cost["wall_s"] >= 0 and entry.arrays["vectors"][0, 0] == 2.0


def test_the_runs_memo_serves_the_entry_used_last_without_reading_the_disk(tmp_path):
    memo = Memo()
    EmbeddingCache(tmp_path, memo).get_or_compute("k", vectors, {})
    (tmp_path / "embeddings" / "k.npz").unlink()
    entry = EmbeddingCache(tmp_path, memo).get_or_compute("k", lambda: pytest.fail("recomputed"), {})
    assert entry.hit
    fresh = EmbeddingCache(tmp_path, Memo()).get_or_compute("k", lambda: vectors(3.0), {})
    assert not fresh.hit  # another run (another memo) reads the disk


def test_a_memo_crosses_to_a_worker_process_empty():
    ctx = RunContext()
    ctx.memo.put("slot", "key", object())  # a live index would not pickle
    copy = pickle.loads(pickle.dumps(ctx))
    assert copy.memo.get("slot", "key") is None and ctx.memo.get("slot", "key") is not None


def test_corrupt_entry_is_discarded_with_a_warning_and_rebuilt(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.save("k", {"vectors": np.ones((4, 2), dtype=np.float32)}, {}, cost={})
    data = tmp_path / "embeddings" / "k.npz"
    data.write_bytes(data.read_bytes()[:-10])  # truncated, as a crash mid-copy would leave it
    with pytest.warns(UserWarning, match="discarding corrupt embedding cache entry k.npz"):
        assert cache.load("k") is None
    assert not data.exists()
    rebuilt = cache.get_or_compute("k", lambda: {"vectors": np.zeros((4, 2), np.float32)}, {})
    assert rebuilt.arrays["vectors"].sum() == 0 and cache.load("k") is not None


def test_entry_without_sidecar_is_incomplete(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.save("k", {"vectors": np.ones((1, 1), dtype=np.float32)}, {}, cost={})
    (tmp_path / "embeddings" / "k.json").unlink()
    assert cache.load("k") is None


def test_entry_missing_a_required_array_is_recomputed(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.save("k", {"vectors": np.ones((1, 1), dtype=np.float32)}, {}, cost={})
    got = cache.get_or_compute("k", lambda: {"vectors": np.ones((1, 1), np.float32),
                                             "token_vectors": np.ones((3, 1), np.float16)},
                               {}, required=("vectors", "token_vectors"))
    assert "token_vectors" in got.arrays and "token_vectors" in cache.load("k").arrays
