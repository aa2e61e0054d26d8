"""LanceDB backend: exact scan = brute force, IVF_PQ / IVF_HNSW_SQ recall with refinement, the
table on disk under the cache dir, a shared reader, and the refusals LanceDB needs."""
import numpy as np
import pytest

pytest.importorskip("lancedb")

from harness.ann.recall import ann_recall, exact_neighbours  # noqa: E402
from harness.ann.sweep import parse_sweep  # noqa: E402
from harness.core import registry  # noqa: E402
from harness.core.context import RunContext  # noqa: E402
from harness.testing import clustered_unit_vectors  # noqa: E402
from harness.core.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def data():
    X, Q = clustered_unit_vectors(11, 1200, 32, 16, 30)
    return X, Q, exact_neighbours(X, Q, 10)


def make(tmp_path, **params):
    plugin = registry.get("ann", "lancedb")
    return plugin.factory(plugin.params(**params), RunContext(cache_dir=tmp_path, threads=1))


def test_exact_matches_brute_force_on_disk_under_the_cache_dir(tmp_path, data):
    X, Q, (exact_ids, exact_scores) = data
    index = make(tmp_path, kind="exact")
    index.build(X)
    ids, scores = index.search(Q, 10)
    np.testing.assert_array_equal(ids, exact_ids)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
    assert index.path.parent == tmp_path / "lancedb" and index.nbytes() > X.nbytes
    reader = index.shared_client().open()  # what a load-test client process opens
    np.testing.assert_array_equal(reader.search(Q, 10)[0], ids)
    with pytest.raises(ConfigError, match=r"holds 32-dimensional vectors but the queries have 8"):
        index.search(Q[:, :8], 10)


@pytest.mark.parametrize("params, low, high", [
    (dict(kind="ivf_pq", partitions=4, sub_vectors=8, nprobes=4), None, 10),
    (dict(kind="ivf_hnsw_sq", partitions=2, m=16, ef_construction=100, nprobes=2, ef=100), None, 5),
])
def test_refinement_lifts_recall_to_near_exact(tmp_path, data, params, low, high):
    X, Q, (exact_ids, exact_scores) = data
    index = make(tmp_path, **params, refine_factor=low)
    index.build(X)
    before = ann_recall(index.search(Q, 10)[0], X, Q, exact_ids, exact_scores, 10).mean()
    index.set_search_params(refine_factor=high)
    ids, scores = index.search(Q, 10)
    after = ann_recall(ids, X, Q, exact_ids, exact_scores, 10).mean()
    assert after >= 0.95 and after >= before
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", Q, X[ids]), atol=1e-4)  # refined


def test_refusals_name_the_field_and_the_limit(tmp_path, data):
    X, _, _ = data
    with pytest.raises(ConfigError, match=r"partitions=8 needs >= 2048 vectors.*partitions <= 4"):
        make(tmp_path, kind="ivf_pq", partitions=8).build(X)
    with pytest.raises(ConfigError, match=r"sub_vectors=5 must divide the dimension 32"):
        make(tmp_path, kind="ivf_pq", partitions=2, sub_vectors=5).build(X)
    with pytest.raises(ConfigError, match=r"search.ef: 32 < k x refine_factor = 50"):
        parse_sweep({"type": "lancedb", "build": {"kind": "ivf_hnsw_sq"},
                     "search": {"ef": 32, "refine_factor": 5}}, k=10)
    with pytest.raises(ConfigError, match=r"search.nprobes: 9 > partitions=8"):
        parse_sweep({"type": "lancedb", "search": {"nprobes": 9}}, k=10)


def test_filtered_search_uses_the_prefilter(tmp_path, data):
    from harness.ann.recall import filtered_exact_neighbours, result_flags
    from harness.filters.allowed import AllowedSet
    X, Q, _ = data
    rng = np.random.default_rng(4)
    sets = [AllowedSet(f"s{f}", rng.random(len(X)) < f) for f in (0.3, 0.02)]
    sets.append(AllowedSet("none", np.zeros(len(X), dtype=bool)))
    exact = make(tmp_path, kind="exact")
    exact.build(X)
    hnsw = make(tmp_path, kind="ivf_hnsw_sq", partitions=2, m=16, ef_construction=100,
                nprobes=2, ef=100)
    hnsw.build(X)
    assert type(hnsw).FILTER_MODE == "pre"
    for allowed in sets:
        truth_ids, truth_scores = filtered_exact_neighbours(X, Q, 10, [allowed.rows] * len(Q))
        ids, scores = exact.search_filtered(Q, 10, allowed)
        np.testing.assert_array_equal(ids, truth_ids)
        np.testing.assert_allclose(scores, truth_scores, atol=1e-5)
        ids, _ = hnsw.search_filtered(Q, 10, allowed)
        assert np.isin(ids[ids >= 0], allowed.rows).all()
        assert ((ids >= 0).sum(1) == min(10, allowed.size)).all(), allowed.key
        assert ann_recall(ids, X, Q, truth_ids, truth_scores, 10).mean() >= 0.9, allowed.key
    # IVF_PQ probing 1 of 4 partitions: the rare allowed rows mostly lie in others, so queries
    # come back short of k (padded, counted); probing all partitions finds them.
    pq = make(tmp_path, kind="ivf_pq", partitions=4, sub_vectors=8, nprobes=1)
    pq.build(X)
    ids, _ = pq.search_filtered(Q, 10, sets[1])
    short = int(((ids >= 0).sum(1) < 10).sum())
    assert short > 0 and result_flags(ids, 10)["short"] == short
    pq.set_search_params(nprobes=4)
    assert ((pq.search_filtered(Q, 10, sets[1])[0] >= 0).sum(1) == 10).all()
