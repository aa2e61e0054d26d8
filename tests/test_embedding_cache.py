import numpy as np
import pytest

from harness.embedding_cache import EmbeddingCache


def test_round_trip_and_hit_counting(tmp_path):
    cache = EmbeddingCache(tmp_path)
    calls = []
    compute = lambda: calls.append(1) or {"vectors": np.arange(6, dtype=np.float32).reshape(2, 3)}
    first = cache.get_or_compute("k1", compute, {"what": "documents"})
    second = cache.get_or_compute("k1", compute, {"what": "documents"})
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first["vectors"], second["vectors"])


def test_corrupt_entry_is_discarded_with_a_warning_and_rebuilt(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.save("k", {"vectors": np.ones((4, 2), dtype=np.float32)}, {})
    data = tmp_path / "embeddings" / "k.npz"
    data.write_bytes(data.read_bytes()[:-10])  # truncated, as a crash mid-copy would leave it
    with pytest.warns(UserWarning, match="discarding corrupt embedding cache entry k.npz"):
        assert cache.load("k") is None
    assert not data.exists()
    rebuilt = cache.get_or_compute("k", lambda: {"vectors": np.zeros((4, 2), np.float32)}, {})
    assert rebuilt["vectors"].sum() == 0 and cache.load("k") is not None


def test_entry_without_sidecar_is_incomplete(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.save("k", {"vectors": np.ones((1, 1), dtype=np.float32)}, {})
    (tmp_path / "embeddings" / "k.json").unlink()
    assert cache.load("k") is None


def test_entry_missing_a_required_array_is_recomputed(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.save("k", {"vectors": np.ones((1, 1), dtype=np.float32)}, {})
    got = cache.get_or_compute("k", lambda: {"vectors": np.ones((1, 1), np.float32),
                                             "token_vectors": np.ones((3, 1), np.float16)},
                               {}, required=("vectors", "token_vectors"))
    assert "token_vectors" in got and "token_vectors" in cache.load("k")
