import numpy as np
import pytest

from harness import registry
from harness.context import RunContext
from harness.errors import ConfigError


def unit_vectors(n, d, seed):
    X = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def make(name, tmp_path, **params):
    plugin = registry.get("ann", name)
    return plugin.factory(plugin.params(**params), RunContext(cache_dir=tmp_path, threads=1, seed=7))


def test_flat_is_exact_against_numpy(tmp_path):
    X, Q = unit_vectors(500, 16, 0), unit_vectors(20, 16, 1)
    index = make("flat", tmp_path)
    index.build(X)
    ids, scores = index.search(Q, 10)
    expected = np.argsort(-(Q @ X.T), axis=1, kind="stable")[:, :10]
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(Q @ X.T, expected, axis=1), rtol=1e-5)
    assert index.nbytes() >= X.nbytes


def test_flat_pads_with_minus_one_beyond_n(tmp_path):
    index = make("flat", tmp_path)
    index.build(unit_vectors(3, 8, 0))
    ids, _ = index.search(unit_vectors(2, 8, 1), 5)
    assert (ids[:, 3:] == -1).all() and sorted(ids[0, :3]) == [0, 1, 2]


def test_unknown_search_parameter_names_the_allowed_ones(tmp_path):
    index = make("flat", tmp_path)
    with pytest.raises(ConfigError, match=r"flat: unknown search parameter\(s\) ef; allowed: none"):
        index.set_search_params(ef=10)
