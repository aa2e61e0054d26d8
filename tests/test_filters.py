"""Metadata filters through `harness run` on a small seeded corpus: every backend's filtered
results against brute force over the unfiltered ranking (pre-filter engines exactly; the Annoy
post-filter only allowed ids, its shortfall flagged), filter-aware ANN recall, keys, the oracle
ceiling, and bad filters refused before any work with the field path named."""
import json
import random

import numpy as np
import pytest

from harness import config as config_mod
from harness.ann.recall import exact_neighbours, filtered_exact_neighbours
from harness.core.errors import ConfigError
from harness.core.types import ranked
from harness.execution.benchmark import run_benchmark
from harness.execution.plan import Planner
from tiny_models import tiny_sentence_transformer

WORDS = "apple pear wine grape tea leaf red green pie cake bread cheese milk honey plum".split()
SOURCES = ["aws", "gcp", "ibm"]


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    return str(tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "model"))


def write_dataset(folder, doc_meta=None, query_meta=None):
    """60 documents and 12 queries over a small vocabulary, seeded; metadata `source` (and a
    numeric `year`) on every document and query unless overridden."""
    rng = random.Random(7)
    (folder / "qrels").mkdir(parents=True)
    docs = {f"d{i}": " ".join(rng.choices(WORDS, k=6)) for i in range(60)}
    meta = {d: {"source": SOURCES[i % 3], "year": 2000 + i % 10} for i, d in enumerate(docs)}
    if doc_meta:
        doc_meta(meta)
    with open(folder / "corpus.jsonl", "w") as fh:
        for d, text in docs.items():
            fh.write(json.dumps({"_id": d, "title": "", "text": text, "metadata": meta[d]}) + "\n")
    queries = {f"q{i}": " ".join(rng.choices(WORDS, k=2)) for i in range(12)}
    qmeta = {q: {"source": SOURCES[i % 3]} for i, q in enumerate(queries)}
    if query_meta:
        query_meta(qmeta)
    with open(folder / "queries.jsonl", "w") as fh:
        for q, text in queries.items():
            fh.write(json.dumps({"_id": q, "text": text, "metadata": qmeta[q]}) + "\n")
    # Each query judges two documents: one of its own source, one of another (removed by the
    # same-source filter), so the oracle ceiling is below 1.
    rows = ["query-id\tcorpus-id\tscore"]
    for i, q in enumerate(queries):
        rows += [f"{q}\td{(i % 3) + 3 * i}\t1", f"{q}\td{((i + 1) % 3) + 3 * i}\t1"]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return folder, meta, qmeta


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("filt") / "ds")


SAME = {"source": {"same_as_query": True}}
BACKENDS = {
    "bm25": {"type": "bm25"},
    "bm25s": {"type": "bm25s"},
    "flat": {"type": "dense", "index": {"type": "flat"}},
    "hnsw": {"type": "dense", "index": {"type": "hnsw", "build": {"M": 16},
                                         "search": {"ef": 200}}},
    "ivf": {"type": "dense", "index": {"type": "ivf", "build": {"nlist": 4},
                                        "search": {"nprobe": 4}}},
    "annoy": {"type": "dense", "index": {"type": "annoy", "build": {"n_trees": 20}}},
}


def cfg(folder, model, pipelines, k=5, **over):
    for p in pipelines:
        if p.get("retriever", {}).get("type") == "dense":
            p["retriever"] = {**p["retriever"], "model": model}
    return config_mod.validate({
        "name": "filters", "dataset": {"name": str(folder)}, "k": k, "isolation": "none",
        "measures": [f"nDCG@{min(k, 10)}", f"R@{min(k, 10)}"],
        "timing": {"latency_queries": 2, "warmup": 1}, "pipelines": pipelines, **over})


@pytest.fixture(scope="module")
def runs(data, tiny_st, tmp_path_factory):
    """Unfiltered runs at k = the whole corpus (the brute-force reference) and filtered runs at
    k=5, every backend."""
    folder, _, _ = data
    full = run_benchmark(cfg(folder, tiny_st, [{"name": n, "retriever": dict(r)}
                                               for n, r in BACKENDS.items()], k=60),
                         tmp_path_factory.mktemp("full"), progress=False)
    filtered = run_benchmark(cfg(folder, tiny_st, [{"name": n, "retriever": dict(r), "filter": SAME}
                                                   for n, r in BACKENDS.items()]),
                             tmp_path_factory.mktemp("filtered"), progress=False)
    return full, filtered


def run_of(outcome, name):
    return next(r.run for r in outcome.results if r.pipeline.name == name)


def allowed(meta, qmeta, qid):
    return {d for d, m in meta.items() if m["source"] == qmeta[qid]["source"]}


@pytest.mark.parametrize("backend", ["bm25", "bm25s", "flat", "hnsw", "ivf"])
def test_pre_filter_equals_brute_force_over_the_allowed_documents(data, runs, backend):
    _, meta, qmeta = data
    full, filtered = runs
    reference, got = run_of(full, backend), run_of(filtered, backend)
    for qid, docs in got.items():
        keep = allowed(meta, qmeta, qid)
        expected = [(d, s) for d, s in ranked(reference[qid]) if d in keep][:5]
        # The same scores, each from an allowed document with that score unfiltered (an engine
        # may pick another of several documents tied at the k-th score).
        assert np.allclose([s for _, s in ranked(docs)], [s for _, s in expected], atol=1e-4), \
            (backend, qid)
        assert set(docs) <= keep
        assert all(abs(reference[qid][d] - s) < 1e-4 for d, s in docs.items())
    flags = json.loads((filtered.out_dir / "metadata.json").read_text())["pipelines"][backend]
    assert flags["filter"]["mode"] == "pre"


def test_post_filter_returns_only_allowed_documents_and_flags_shortfall(data, runs):
    _, meta, qmeta = data
    _, filtered = runs
    got = run_of(filtered, "annoy")
    for qid, docs in got.items():
        assert set(docs) <= allowed(meta, qmeta, qid)
    entry = json.loads((filtered.out_dir / "metadata.json").read_text())["pipelines"]["annoy"]
    assert entry["filter"]["mode"] == "post"
    short = sum(1 for q, docs in got.items() if len(docs) < 5)
    assert entry["filter"]["short_of_k"] == short
    assert entry["result_flags"].get("retriever:dense: short", 0) == short


def test_filter_aware_ann_recall_uses_exact_search_over_the_allowed_subset(runs):
    _, filtered = runs
    # Exact filtered search is its own ground truth: recall 1, though the unfiltered exact top 5
    # mostly lies outside the allowed third of the corpus.
    assert filtered.evaluations["flat"].aggregate["ann_recall@5"] == 1.0
    assert filtered.evaluations["hnsw"].aggregate["ann_recall@5"] == 1.0


def test_filtered_exact_neighbours_match_numpy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 8)).astype(np.float32)
    Q = rng.standard_normal((4, 8)).astype(np.float32)
    subsets = [np.arange(0, 50, 3), np.arange(0, 50, 3), np.array([5, 7]), np.arange(50)]
    ids, scores = filtered_exact_neighbours(X, Q, 5, subsets)
    for row, rows in enumerate(subsets):
        sims = X[rows] @ Q[row]
        order = rows[np.argsort(-sims)][:5]
        assert ids[row, :len(order)].tolist() == order.tolist()
        assert (ids[row, len(order):] == -1).all()
    full_ids, _ = exact_neighbours(X, Q[3:], 5)
    assert ids[3].tolist() == full_ids[0].tolist()


def test_oracle_ceiling_and_relevant_removed(runs):
    _, filtered = runs
    entry = json.loads((filtered.out_dir / "metadata.json").read_text())["pipelines"]["flat"]
    f = entry["filter"]
    # Every query loses exactly one of its two relevant documents to the same-source filter.
    assert f["relevant_removed"] == 12 and f["queries_with_relevant_removed"] == 12
    assert f["oracle_ceiling"]["R@5"] == pytest.approx(0.5)
    ideal = 1.0 / (1.0 + 1.0 / np.log2(3))  # one of two relevant docs, ranked first
    assert f["oracle_ceiling"]["nDCG@5"] == pytest.approx(ideal)
    assert filtered.evaluations["flat"].aggregate["R@5"] <= 0.5


def test_filter_is_keyed_only_when_set(data, tiny_st):
    folder, _, _ = data

    def key(filter=None):
        p = {"name": "b", "retriever": {"type": "bm25"}}
        if filter is not None:
            p["filter"] = filter
        return Planner(cfg(folder, tiny_st, [p])).pipelines()[0].leaf.key

    plain = key()
    assert key({"source": "aws"}) == key({"source": {"eq": "aws"}}) != plain
    assert key({"source": {"in": ["gcp", "aws"]}}) == key({"source": {"in": ["aws", "gcp"]}})
    assert key({"source": "aws"}) != key({"source": "gcp"}) != key(SAME)
    from harness.core.hashing import stable_hash
    from harness.execution.plan import node_key, resolved_params, run_settings
    c = cfg(folder, tiny_st, [{"name": "b", "retriever": {"type": "bm25"}}])
    spec = c.pipelines[0].retriever
    assert plain == node_key("first_stage", spec, resolved_params("retriever", spec), [], None,
                             run_settings(c, None), {})  # unfiltered keys as before filters
    assert isinstance(stable_hash({}), str)


def test_constant_and_range_filters(data, runs, tiny_st, tmp_path):
    folder, meta, _ = data
    out = run_benchmark(cfg(folder, tiny_st, [
        {"name": "in", "retriever": {"type": "bm25s"}, "filter": {"source": {"in": ["gcp", "ibm"]}}},
        {"name": "range", "retriever": {"type": "dense", "index": {"type": "flat"}},
         "filter": {"year": {"range": {"gte": 2003, "lt": 2005}}}}]), tmp_path, progress=False)
    for qid, docs in run_of(out, "in").items():
        assert all(meta[d]["source"] in ("gcp", "ibm") for d in docs)
    for qid, docs in run_of(out, "range").items():
        assert len(docs) == 5 and all(2003 <= meta[d]["year"] < 2005 for d in docs)


@pytest.mark.parametrize("filter,message", [
    ({"sourse": "aws"}, "pipelines[0].filter.sourse: unknown metadata field 'sourse'"),
    ({"source": 3}, "pipelines[0].filter.source.eq: compares number values but the documents' "
                    "'source' values are string"),
    ({"source": {"range": {"gte": 1}}}, "pipelines[0].filter.source.range: compares number"),
    ({"tier": "gold"}, "pipelines[0].filter.tier: field 'tier' is missing on 59 of 60 documents"),
    ({"year": {"same_as_query": True}}, "pipelines[0].filter.year.same_as_query: field 'year' is "
                                        "missing on 12 of 12 judged queries"),
])
def test_bad_filters_are_refused_before_any_work(tmp_path, tiny_st, filter, message):
    folder, _, _ = write_dataset(tmp_path / "ds", doc_meta=lambda m: m["d0"].update(tier="gold"))
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as exc:
        run_benchmark(cfg(folder, tiny_st, [{"name": "b", "retriever": {"type": "bm25s"},
                                             "filter": filter}]), out, progress=False)
    assert message in str(exc.value)
    assert not (out / "nodes").exists() and not (out / "metrics.csv").exists()


@pytest.mark.parametrize("filter,message", [
    ({"source": {"like": "a%"}}, "pipelines[0].filter.source: give exactly one of eq, in, range"),
    ({"source": {"in": []}}, "pipelines[0].filter.source.in: a non-empty list"),
    ({"source": {"in": ["a", 1]}}, "pipelines[0].filter.source.in: values of one type"),
    ({"year": {"range": {"gte": "2000"}}}, "pipelines[0].filter.year.range: bounds must be numbers"),
    ({"source": {"same_as_query": False}}, "write `same_as_query: true`"),
])
def test_bad_filter_syntax_is_refused_at_config_time(data, tiny_st, filter, message):
    folder, _, _ = data
    with pytest.raises(ConfigError, match="invalid config") as exc:
        cfg(folder, tiny_st, [{"name": "b", "retriever": {"type": "bm25"}, "filter": filter}])
    assert message in str(exc.value)


def test_unsupported_stage_is_refused_at_config_time(data, tiny_st):
    import fake_plugins  # noqa: F401  (a retriever that declares no filter support)
    folder, _, _ = data
    with pytest.raises(ConfigError) as exc:
        cfg(folder, tiny_st, [{"name": "f", "retriever": {"type": "fake-overlap"}, "filter": SAME}])
    assert "pipelines[0].filter: retriever 'fake-overlap' does not support metadata filters" \
        in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        cfg(folder, tiny_st, [{"name": "a", "retriever": {"type": "bm25"}},
                              {"name": "b", "retriever": {"type": "bm25s"}},
                              {"name": "f", "fuse": {"type": "rrf", "inputs": ["a", "b"]},
                               "filter": SAME}])
    assert "pipelines[2].filter: a fusion takes no filter" in str(exc.value)


def test_metadata_must_be_an_object(tmp_path):
    from harness.core.errors import DataError
    from harness.datasets import load_beir
    folder, _, _ = write_dataset(tmp_path / "ds")
    lines = (folder / "corpus.jsonl").read_text().splitlines()
    lines[2] = json.dumps({"_id": "d2", "text": "x", "metadata": ["aws"]})
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"corpus.jsonl:3: field 'metadata' must be a JSON object"):
        load_beir(folder)


def test_report_shows_mode_ceiling_and_shortfall(runs, tmp_path):
    from harness.reports.report import build_report
    _, filtered = runs
    html = build_report(filtered.out_dir, tmp_path / "report").read_text()
    section = html[html.index("Metadata filters</h2>"):]
    row = section[section.index("<tr><td>annoy</td>"):].split("</tr>")[0]
    meta = json.loads((filtered.out_dir / "metadata.json").read_text())["pipelines"]["annoy"]
    assert ">post<" in row and f"{meta['filter']['oracle_ceiling']['nDCG@5']:.4f}" in row
    assert f">{meta['filter']['short_of_k']} (" in row


VECTOR_DBS = {
    "pgvector": ("psycopg", [{"type": "pgvector", "build": {"kind": "exact"}},
                             {"type": "pgvector", "build": {"kind": "hnsw", "m": 8},
                              "search": {"ef_search": 10}}]),
    # LanceDB's IVF needs >= 256 vectors: its ANN kinds are tested in test_lancedb.py.
    "lancedb": ("lancedb", [{"type": "lancedb", "build": {"kind": "exact"}}]),
}


@pytest.mark.parametrize("db", VECTOR_DBS)
def test_vector_database_backends_pre_filter_in_a_real_run(data, runs, tiny_st, tmp_path,
                                                          monkeypatch, db):
    """pgvector (SQL WHERE, iterative scans) and LanceDB (prefilter) under the same-source
    filter: exact kinds equal flat's filtered run, ANN kinds return only allowed documents with
    filter-aware ann_recall near 1, mode `pre`, nothing short of k."""
    module, points = VECTOR_DBS[db]
    pytest.importorskip(module)
    if db == "pgvector":
        pytest.importorskip("pgserver")
        import tempfile
        monkeypatch.delenv("HARNESS_PG_DSN", raising=False)
        # Short path: Unix socket names are limited to 107 bytes.
        root = tempfile.mkdtemp(prefix="hpg-", dir="/tmp")
        monkeypatch.setenv("HARNESS_PG_ROOT", root)
    folder, meta, qmeta = data
    _, filtered = runs
    flat = run_of(filtered, "flat")
    out = run_benchmark(cfg(folder, tiny_st, [{"name": db, "filter": SAME, "retriever": {
        "type": "dense", "index": points}}]), tmp_path / "out", cache_dir=tmp_path / "cache",
        progress=False)
    assert all(r.error is None for r in out.results), [r.error for r in out.results]
    pipelines = json.loads((out.out_dir / "metadata.json").read_text())["pipelines"]
    assert len(out.results) == len(points)
    for result in out.results:
        name = result.pipeline.name
        for qid, docs in result.run.items():
            assert len(docs) == 5 and set(docs) <= allowed(meta, qmeta, qid)
            if "exact" in name:
                assert [s for _, s in ranked(docs)] == pytest.approx(
                    [s for _, s in ranked(flat[qid])], abs=1e-4)
        recall = out.evaluations[name].aggregate["ann_recall@5"]
        assert recall == 1.0 if "exact" in name else recall >= 0.9
        assert pipelines[name]["filter"]["mode"] == "pre"
        assert pipelines[name]["filter"]["short_of_k"] == 0
        if db == "pgvector" and "hnsw" in name:  # how the filtered HNSW scans were run
            stats = pipelines[name]["stage_stats"]
            assert any(st.get("filter_iterative_scan") == "relaxed_order" for st in stats.values())
    del out, result
    import gc
    gc.collect()  # the run's memo held the last index: once freed, an embedded server stops
    from harness.engines import postgres
    assert postgres._shared is None
    if db == "pgvector":
        import shutil
        shutil.rmtree(root)
