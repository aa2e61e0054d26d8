import numpy as np
import pytest

from harness.core import registry
from harness.core.context import RunContext
from harness.core.errors import ConfigError


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


# -- backends -----------------------------------------------------------------------------------
import harness.ann  # noqa: E402  (registers ivf, hnsw, annoy)
from harness.ann.base import check_metric  # noqa: E402
from harness.ann.recall import ann_recall, exact_neighbours, result_flags  # noqa: E402
from harness.ann.sweep import expand_grid, parse_sweep, point_name, run_sweep  # noqa: E402
from harness.ann.pareto import pareto_frontier, recall_qps_frontier  # noqa: E402


@pytest.fixture(scope="module")
def clustered():
    """2000 x 32 unit vectors around 20 centres, and 50 queries near corpus points."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((20, 32))
    X = centres[rng.integers(0, 20, 2000)] + 0.5 * rng.standard_normal((2000, 32))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    Q = X[rng.choice(2000, 50, replace=False)] + 0.2 * rng.standard_normal((50, 32))
    Q = np.ascontiguousarray(Q / np.linalg.norm(Q, axis=1, keepdims=True), dtype=np.float32)
    return X, Q, exact_neighbours(X, Q, 10)


@pytest.mark.parametrize("backend, params, bound", [
    ("ivf", dict(nlist=20, nprobe=8), 0.95),
    ("ivf", dict(nlist=20, nprobe=8, pq_m=8, nbits=6), 0.5),  # PQ codes are lossy by design
    ("hnsw", dict(M=16, ef_construction=100, ef=100), 0.98),
    ("hnsw", dict(space="cosine", ef=100), 0.98),
    ("annoy", dict(n_trees=20, search_k=4000), 0.95),
    ("annoy", dict(n_trees=20, search_k=4000, metric="angular"), 0.95),
])
def test_backend_recall_at_a_generous_point(tmp_path, clustered, backend, params, bound):
    X, Q, (exact_ids, exact_scores) = clustered
    index = make(backend, tmp_path, **params)
    index.build(X)
    ids, scores = index.search(Q, 10)
    assert ids.shape == scores.shape == (50, 10) and ids.dtype == np.int64
    assert ann_recall(ids, X, Q, exact_ids, exact_scores, 10).mean() >= bound
    assert result_flags(ids, 10) == {"short": 0, "too_many": 0, "duplicates": 0}
    if backend != "ivf" or "pq_m" not in params:  # exact distances: scores are similarities
        sims = np.einsum("qd,qkd->qk", Q, X[ids])
        np.testing.assert_allclose(scores, sims, atol=1e-4)
    assert index.nbytes() > 0


def test_search_params_change_results_without_rebuild(tmp_path, clustered):
    X, Q, (exact_ids, exact_scores) = clustered
    index = make("ivf", tmp_path, nlist=40, nprobe=1)
    index.build(X)
    low = ann_recall(index.search(Q, 10)[0], X, Q, exact_ids, exact_scores, 10).mean()
    index.set_search_params(nprobe=40)
    full = ann_recall(index.search(Q, 10)[0], X, Q, exact_ids, exact_scores, 10).mean()
    assert low < full == 1.0


@pytest.mark.parametrize("backend", ["hnsw", "ivf", "annoy"])
def test_unknown_search_parameter_is_a_config_error(tmp_path, clustered, backend):
    index = make(backend, tmp_path)
    allowed = {"hnsw": "ef", "ivf": "nprobe", "annoy": "search_k"}[backend]
    with pytest.raises(ConfigError, match=f"unknown search parameter\\(s\\) nprob; allowed: {allowed}"):
        index.set_search_params(nprob=3)


def test_single_thread_hnsw_build_is_deterministic(tmp_path, clustered):
    X, Q, _ = clustered
    results = []
    for _ in range(2):
        plugin = registry.get("ann", "hnsw")
        index = plugin.factory(plugin.params(M=8, ef_construction=40, ef=10, deterministic=True),
                               RunContext(cache_dir=tmp_path, threads=2, seed=11))
        index.build(X)
        results.append(index.search(Q, 10))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_hnsw_pads_when_k_exceeds_the_corpus(tmp_path):
    index = make("hnsw", tmp_path)
    index.build(unit_vectors(3, 8, 0))
    ids, scores = index.search(unit_vectors(2, 8, 1), 5)
    assert (ids[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    assert result_flags(ids, 5)["short"] == 2


def test_metric_mismatch_is_refused():
    hnsw, annoy = registry.get("ann", "hnsw").params, registry.get("ann", "annoy").params
    with pytest.raises(ConfigError, match="ranks by cosine but the model's similarity is dot product"):
        check_metric(annoy(metric="angular"), normalized=False, similarity="dot")
    with pytest.raises(ConfigError, match="ranks by inner product but the model's similarity is cosine"):
        check_metric(hnsw(space="ip"), normalized=False, similarity="cos")
    check_metric(annoy(metric="angular"), normalized=True, similarity="dot")  # unit vectors: same ranking
    check_metric(hnsw(space="cosine"), normalized=False, similarity="cos")


def test_ivf_refuses_pq_m_not_dividing_the_dimension(tmp_path, clustered):
    with pytest.raises(ConfigError, match="pq_m=5 must divide the dimension 32"):
        make("ivf", tmp_path, nlist=4, pq_m=5).build(clustered[0])


# -- recall and flags ---------------------------------------------------------------------------
def test_recall_counts_a_neighbour_tied_with_the_kth():
    # Docs 1 and 2 are identical, so either can be the 2nd exact neighbour of the query.
    X = np.array([[1, 0], [0.6, 0.8], [0.6, 0.8], [0, 1]], dtype=np.float32)
    Q = np.array([[1, 0]], dtype=np.float32)
    exact_ids, exact_scores = exact_neighbours(X, Q, 2)
    assert exact_ids.tolist() == [[0, 1]]
    assert ann_recall(np.array([[0, 2]]), X, Q, exact_ids, exact_scores, 2).tolist() == [1.0]
    assert ann_recall(np.array([[0, 3]]), X, Q, exact_ids, exact_scores, 2).tolist() == [0.5]


def test_recall_counts_repeats_once_and_padding_never():
    X = unit_vectors(50, 8, 0)
    Q = unit_vectors(1, 8, 1)
    exact_ids, exact_scores = exact_neighbours(X, Q, 3)
    top = exact_ids[0]
    assert ann_recall(np.array([[top[0], top[0], top[0]]]), X, Q, exact_ids, exact_scores, 3)[0] == pytest.approx(1 / 3)
    assert ann_recall(np.array([[top[0], top[1], -1]]), X, Q, exact_ids, exact_scores, 3)[0] == pytest.approx(2 / 3)


def test_exact_neighbours_chunked_matches_numpy():
    X, Q = unit_vectors(1000, 16, 0), unit_vectors(7, 16, 1)
    ids, scores = exact_neighbours(X, Q, 10, chunk=128)
    sims = Q @ X.T
    np.testing.assert_array_equal(ids, np.argsort(-sims, axis=1, kind="stable")[:, :10])
    np.testing.assert_allclose(scores, np.sort(sims, axis=1)[:, ::-1][:, :10], rtol=1e-5)


def test_result_flags_short_too_many_and_duplicates():
    rows = [[1, 2, 3], [1, -1, -1], [4, 4, 5], [1, 2, 3, 4], [7, 7]]
    assert result_flags(rows, 3) == {"short": 2, "too_many": 1, "duplicates": 2}


# -- sweeps ---------------------------------------------------------------------------------------
def test_expand_grid_scalars_and_lists():
    assert expand_grid({"M": [16, 32], "ef_construction": 200}) == [
        {"M": 16, "ef_construction": 200}, {"M": 32, "ef_construction": 200}]
    assert expand_grid({}) == [{}]
    with pytest.raises(ConfigError, match="'ef' has an empty list"):
        expand_grid({"ef": []})


def test_parse_sweep_and_point_names():
    spec = parse_sweep({"type": "hnsw", "build": {"ef_construction": 200, "M": [16, 32]},
                        "search": {"ef": [16, 64]}})
    assert len(spec.build_points) == 2 and len(spec.search_points) == 2
    assert point_name("hnsw", {"ef": 64, "ef_construction": 200, "M": 16}, "dense-minilm") == \
        "dense-minilm/hnsw[M=16,efC=200,ef=64]"
    assert point_name("flat", {}) == "flat"
    with pytest.raises(ConfigError, match=r"index.search: unknown parameter\(s\) M for ann hnsw; allowed: ef"):
        parse_sweep({"type": "hnsw", "search": {"M": 8}})
    with pytest.raises(ConfigError, match="invalid ann hnsw point"):
        parse_sweep({"type": "hnsw", "build": {"M": [16, 0]}})


class CountingFlat:
    """The flat backend, counting builds across instances."""

    builds = 0

    def __init__(self, params, context):
        self.inner = registry.get("ann", "flat").factory(registry.get("ann", "flat").params(), context)
        self.threads = context.threads

    def build(self, X):
        CountingFlat.builds += 1
        self.inner.build(X)

    def set_search_params(self, **params):
        self.seen = params

    def search(self, Q, k):
        return self.inner.search(Q, k)


def test_sweep_builds_once_per_build_point(tmp_path, clustered):
    from harness.ann.base import ANNParams

    class Params(ANNParams):
        SEARCH_PARAMS = frozenset({"probe"})
        size: int = 1
        probe: int = 1

    registry.register("ann", "counting-test", params=Params)(CountingFlat)
    X, Q, (exact_ids, exact_scores) = clustered
    CountingFlat.builds = 0
    results = run_sweep("counting-test", expand_grid({"size": [1, 2]}), expand_grid({"probe": [1, 2, 3]}),
                        X, Q, 10, exact_ids, exact_scores, RunContext(cache_dir=tmp_path, threads=1),
                        latency_queries=5, warmup=1, prefix="dense")
    assert CountingFlat.builds == 2 and len(results) == 6
    assert [r.name for r in results[:2]] == ["dense/counting-test[size=1,probe=1]",
                                             "dense/counting-test[size=1,probe=2]"]
    for r in results:
        assert r.status == "ok" and r.recall == 1.0 and r.latency.n_queries == 5
        assert r.batch_qps > 0 and r.build_s > 0 and r.size_bytes is None
        assert r.ids.shape == (50, 10) and r.flags["short"] == 0
    assert results[0].batch_threads == 1 and results[0].latency.p95_ms > 0
    assert recall_qps_frontier(results)[0].single_qps == max(r.single_qps for r in results)


def test_sweep_records_a_failing_build_point_and_goes_on(tmp_path, clustered):
    X, Q, (exact_ids, exact_scores) = clustered
    results = run_sweep("ivf", [{"nlist": 5000}, {"nlist": 10}], [{"nprobe": 10}], X, Q, 10,
                        exact_ids, exact_scores, RunContext(cache_dir=tmp_path, threads=1),
                        latency_queries=5, warmup=1)
    assert [r.status for r in results] == ["failed", "ok"]
    assert "nlist=5000 exceeds the 2000 vectors" in results[0].reason
    assert results[1].recall == 1.0 and results[1].size_bytes > 0


# -- pareto ---------------------------------------------------------------------------------------
def test_pareto_frontier_max_max_and_max_min():
    pts = [(0.9, 100), (0.95, 50), (0.8, 80), (0.99, 10), (0.95, 40), (float("nan"), 1000)]
    assert pareto_frontier(pts, [(lambda p: p[0], "max"), (lambda p: p[1], "max")]) == \
        [(0.99, 10), (0.95, 50), (0.9, 100)]
    rows = [{"nDCG@10": 0.6, "p95_ms": 2.0}, {"nDCG@10": 0.64, "p95_ms": 5.0}, {"nDCG@10": 0.6, "p95_ms": 3.0}]
    assert pareto_frontier(rows, [(lambda r: r["nDCG@10"], "max"), (lambda r: r["p95_ms"], "min")]) == \
        rows[1::-1]


# -- synthetic vectors ------------------------------------------------------------------------------
def test_synthetic_vectors_are_cached_memory_mapped_and_seeded(tmp_path, monkeypatch):
    from harness.ann import synthetic
    monkeypatch.setattr(synthetic, "CHUNK_ROWS", 64)  # several chunks on a tiny corpus
    ctx = RunContext(cache_dir=tmp_path, seed=5)
    X = synthetic.synthetic_vectors(ctx, 300, d=24, n_clusters=10)
    assert isinstance(X, np.memmap) and X.mode == "r" and X.shape == (300, 24) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    mtime = next((tmp_path / "synthetic").glob("corpus-*.npy")).stat().st_mtime_ns
    again = synthetic.synthetic_vectors(ctx, 300, d=24, n_clusters=10)
    assert next((tmp_path / "synthetic").glob("corpus-*.npy")).stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(X, again)
    Q = synthetic.synthetic_vectors(ctx, 300, "queries", d=24, n_clusters=10)
    other_seed = synthetic.synthetic_vectors(RunContext(cache_dir=tmp_path, seed=6), 300, d=24,
                                             n_clusters=10)
    assert not np.allclose(X, Q) and not np.allclose(X, other_seed)
    # Clustered: a point's nearest other point is far closer than a random pair.
    sims = X @ X.T
    np.fill_diagonal(sims, -1)
    assert sims.max(axis=1).mean() > 0.5 > abs(float(sims[np.triu_indices(300, 1)].mean()))


# -- ann recall: named after its cut-off (issue 10, defect 3) ---------------------------------------
def fixed_vectors(X, Q, index, ctx):
    """An indexed VectorRetriever over given vectors (query text = its row in Q): the real index,
    search and ann-recall code paths without a model."""
    from harness.retrievers.vector import IndexSpec, VectorRetriever
    from harness.core.types import Document

    class Retriever(VectorRetriever):
        def encoder_key(self):
            return {"fixed": float(X.sum())}

        def encode_documents(self, texts):
            return {"vectors": X}

        def encode_queries(self, texts):
            return Q[[int(t) for t in texts]]

    retriever = Retriever(IndexSpec(**index), ctx)
    retriever.index({f"d{i}": Document(f"d{i}", "", str(i)) for i in range(len(X))})
    return retriever


def all_queries(Q):
    return {f"q{i}": str(i) for i in range(len(Q))}


@pytest.mark.parametrize("k", [3, 10, 30])
def test_exact_search_has_ann_recall_one_at_any_k_named_after_its_cutoff(tmp_path, clustered, k):
    """Defect 3: with k=3, 3 results were compared with 10 exact neighbours (recall 0.3 for exact
    search, reported as ann_recall@10). The cut-off is min(10, k, documents)."""
    X, Q, _ = clustered
    flat = fixed_vectors(X, Q, {"type": "flat"}, RunContext(cache_dir=tmp_path, threads=1))
    run = flat.search(all_queries(Q), k)
    measures = flat.extra_measures(run)
    assert list(measures) == [f"ann_recall@{min(10, k)}"]
    assert set(measures[f"ann_recall@{min(10, k)}"].values()) == {1.0}


class ReversedFlat:
    """Exact top k in reverse order: at k=30 the first 10 results are exact ranks 30..21."""

    def __init__(self, params, context):
        self.inner = registry.get("ann", "flat").factory(registry.get("ann", "flat").params(), context)

    def build(self, X):
        self.inner.build(X)

    def set_search_params(self, **params):
        pass

    def search(self, Q, k):
        ids, scores = self.inner.search(Q, k)
        return ids[:, ::-1].copy(), scores[:, ::-1].copy()


def test_ann_recall_at_k_above_10_scores_the_first_10_returned(tmp_path, clustered):
    from harness.ann.base import ANNParams
    registry.register("ann", "reversed-test", params=ANNParams)(ReversedFlat)
    X, Q, _ = clustered
    rev = fixed_vectors(X, Q, {"type": "reversed-test"}, RunContext(cache_dir=tmp_path, threads=1))
    recall = rev.extra_measures(rev.search(all_queries(Q), 30))["ann_recall@10"]
    assert max(recall.values()) == 0.0  # all 30 exact neighbours came back, the 10 best last


# -- depth: a point measures what it says (issue 10, defect 4) --------------------------------------
def test_hnsw_point_with_ef_below_k_is_refused_naming_the_field():
    """hnswlib searches with max(ef, k): at k=1000 every ef < 1000 point was the ef=1000 search."""
    with pytest.raises(ConfigError, match=r"^index\.search\.ef: 64 < k=1000; hnswlib searches with "
                                          r"max\(ef, k\), so this point would measure ef=1000"):
        parse_sweep({"type": "hnsw", "search": {"ef": [1000, 64]}}, k=1000)
    assert parse_sweep({"type": "hnsw", "search": {"ef": [10, 64]}}, k=10).search_points[0] == {"ef": 10}


def test_run_sweep_refuses_ef_below_k_before_building(tmp_path, clustered):
    X, Q, _ = clustered
    exact_ids, exact_scores = exact_neighbours(X, Q, 20)
    with pytest.raises(ConfigError, match=r"ann hnsw point \{'ef': 16\}: search\.ef: 16 < k=20"):
        run_sweep("hnsw", [{}], [{"ef": 32}, {"ef": 16}], X, Q, 20, exact_ids, exact_scores,
                  RunContext(cache_dir=tmp_path, threads=1), latency_queries=2, warmup=0)


def test_annoy_default_search_k_is_resolved_to_n_trees_times_k():
    annoy = registry.get("ann", "annoy").params
    assert annoy(n_trees=7).check_depth(10) == {"search_k": 70}
    assert annoy(n_trees=7, search_k=500).check_depth(1000) == {"search_k": 500}


def test_search_refuses_a_depth_the_backend_would_not_measure(tmp_path, clustered):
    """The config check's defensive twin, where the index is searched: hnsw ef=16 at k=20."""
    X, Q, _ = clustered
    hnsw = fixed_vectors(X, Q, {"type": "hnsw", "search": {"ef": 16}},
                         RunContext(cache_dir=tmp_path, threads=1))
    assert hnsw.search(all_queries(Q), 10) and hnsw.stage_stats()["ann_search_params"] == {"ef": 16}
    with pytest.raises(ConfigError, match=r"index\.search\.ef: 16 < k=20"):
        hnsw.search(all_queries(Q), 20)


def test_annoy_records_the_search_k_it_searches_with(tmp_path, clustered):
    X, Q, _ = clustered
    ctx = RunContext(cache_dir=tmp_path, threads=1)
    default = fixed_vectors(X, Q, {"type": "annoy", "build": {"n_trees": 4}}, ctx)
    explicit = fixed_vectors(X, Q, {"type": "annoy", "build": {"n_trees": 4},
                                    "search": {"search_k": 40}}, ctx)
    assert default.search(all_queries(Q), 10) == explicit.search(all_queries(Q), 10)
    assert default.stage_stats()["ann_search_params"] == {"search_k": 40}


def test_a_point_with_default_search_params_resets_a_shared_index(tmp_path, clustered):
    """Points of one build point share its index (the run's memo): a point that leaves ef at its
    default must not search with the ef another point set."""
    X, Q, _ = clustered
    ctx = RunContext(cache_dir=tmp_path, threads=1)
    low = fixed_vectors(X, Q, {"type": "hnsw", "search": {"ef": 10}}, ctx)
    default = fixed_vectors(X, Q, {"type": "hnsw"}, ctx)
    assert low._index is default._index  # built once
    low.search(all_queries(Q), 10)
    default.search(all_queries(Q), 10)
    assert default._index.params.ef == 64


def test_sweep_points_of_a_build_point_report_its_build(tmp_path, clustered):
    """Defect 9: the second point of a build point reused the index; its stats are those of the
    build it searches, not of no build, and the index memo belongs to the run (RunContext)."""
    X, Q, _ = clustered
    ctx = RunContext(cache_dir=tmp_path, threads=1)
    first = fixed_vectors(X, Q, {"type": "hnsw", "search": {"ef": 10}}, ctx)
    second = fixed_vectors(X, Q, {"type": "hnsw", "search": {"ef": 50}}, ctx)
    keys = ("wall_s", "peak_rss_delta_bytes", "ann_build_wall_s", "ann_peak_rss_delta_bytes",
            "size_bytes", "encode_wall_s", "encode_peak_rss_delta_bytes")
    assert first._index is second._index
    assert {k: first.stats[k] for k in keys} == {k: second.stats[k] for k in keys}
    assert first.stats["ann_build_wall_s"] > 0
    other_run = fixed_vectors(X, Q, {"type": "hnsw"}, RunContext(cache_dir=tmp_path, threads=1))
    assert other_run._index is not first._index
