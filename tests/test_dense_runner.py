"""The dense retriever through `harness run`: embedding cache, exact search and ANN sweeps,
with a tiny sentence-transformers model built on the fly (loaded like a real checkpoint)."""
import json

import pytest

from harness import config as config_mod
from harness.ann import hnsw
from harness.execution.benchmark import run_benchmark
from tiny_models import tiny_sentence_transformer
from test_runner import timing_rows


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    return str(tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "model"))


def config(folder, model, index, k=5, **over):
    return config_mod.validate({
        "name": "dense", "dataset": {"name": str(folder)}, "k": k, "isolation": "none",
        "measures": [f"nDCG@{k}", f"R@{k}"], "timing": {"latency_queries": 2, "warmup": 1},
        "pipelines": [{"name": "dense", "retriever": {"type": "dense", "model": model,
                                                      "index": index}}], **over})


def metric_rows(out) -> dict:
    import csv
    with open(out.out_dir / "metrics.csv") as fh:
        return {(r["pipeline"], r["measure"]): float(r["value"]) for r in csv.DictReader(fh)}


def build_rows(out, pipeline) -> dict:
    """The `index` stage's `build` rows of one pipeline, {stat: value}."""
    return {stat: v for (p, stage, mode, stat), v in timing_rows(out.out_dir).items()
            if (p, stage, mode) == (pipeline, "index", "build")}


def test_sweep_expands_points_builds_once_per_build_point(tiny_beir, tiny_st, tmp_path, monkeypatch):
    builds = []
    real = hnsw.HNSWIndex.build
    monkeypatch.setattr(hnsw.HNSWIndex, "build",
                        lambda self, X: builds.append(self.params.M) or real(self, X))
    cfg = config(tiny_beir, tiny_st, {"type": "hnsw", "build": {"M": [4, 8], "ef_construction": 20},
                                      "search": {"ef": [5, 10]}})
    out = run_benchmark(cfg, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    names = [r.pipeline.name for r in out.results]
    assert names == ["dense/hnsw[M=4,efC=20,ef=5]", "dense/hnsw[M=4,efC=20,ef=10]",
                     "dense/hnsw[M=8,efC=20,ef=5]", "dense/hnsw[M=8,efC=20,ef=10]"]
    assert all(r.error is None for r in out.results)
    assert builds == [4, 8]  # the second search point of a build point reuses its index
    assert 0.0 < metric_rows(out)[("dense/hnsw[M=8,efC=20,ef=10]", "ann_recall@5")] <= 1.0
    assert meta_flags(out, "dense/hnsw[M=8,efC=20,ef=10]") == {}  # nothing short or repeated
    meta = json.loads((out.out_dir / "metadata.json").read_text())["pipelines"]
    assert meta["dense/hnsw[M=4,efC=20,ef=5]"]["tolerance_class"] == "ann"
    stats = meta["dense/hnsw[M=4,efC=20,ef=10]"]["stage_stats"]
    assert [s["ann_search_params"] for s in stats.values()] == [{"ef": 10}]  # recorded as searched


def test_index_build_rows_do_not_depend_on_cache_state_or_sweep_order(tiny_beir, tiny_st, tmp_path):
    """Defect 9: `build s` was the runner's clock around index(): document encoding on an
    embedding-cache miss only, and the ANN build on the first point of a build point only (~0
    on the others, which reuse its index). Now every point reports the recorded cost of the index
    it searches (encode + ANN build), and a warm run reports the encode time of the cold one."""
    index = {"type": "hnsw", "build": {"M": 4, "ef_construction": 20}, "search": {"ef": [5, 10]}}
    cold = run_benchmark(config(tiny_beir, tiny_st, index), tmp_path / "cold",
                         cache_dir=tmp_path / "cache", progress=False)
    warm = run_benchmark(config(tiny_beir, tiny_st, index), tmp_path / "warm",
                         cache_dir=tmp_path / "cache", progress=False)
    first, second = (build_rows(cold, f"dense/hnsw[M=4,efC=20,ef={ef}]") for ef in (5, 10))
    assert second["wall_s"] == first["wall_s"]  # the second point searches the index built first
    assert first["embedding_cache_hit"] == 0.0 and first["ann_build_wall_s"] > 0
    same = {stat for stat in first if stat != "embedding_cache_hit"}
    assert {"wall_s", "peak_rss_delta_bytes", "ann_build_wall_s", "size_bytes",
            "encode_wall_s"} <= same
    assert {s: first[s] for s in same} == {s: second[s] for s in same}
    assert first["wall_s"] == first["encode_wall_s"] + first["ann_build_wall_s"]
    warm_first = build_rows(warm, "dense/hnsw[M=4,efC=20,ef=5]")
    assert warm_first["embedding_cache_hit"] == 1.0
    for stat in ("encode_wall_s", "encode_peak_rss_delta_bytes"):
        assert warm_first[stat] == first[stat]


def test_ann_recall_is_named_after_the_cutoff_used(tiny_beir, tiny_st, tmp_path):
    """Defect 3: with k=3 exact search reported ann_recall@5 = 0.6 (3 results against the exact
    top 5 of the 5 documents); the cut-off is min(10, k, documents)."""
    out = run_benchmark(config(tiny_beir, tiny_st, {"type": "flat"}, k=3), tmp_path / "out",
                        cache_dir=tmp_path / "cache", progress=False)
    recall = {m: v for (p, m), v in metric_rows(out).items() if m.startswith("ann_recall")}
    assert recall == {"ann_recall@3": 1.0}


def test_hnsw_ef_below_k_is_refused_at_config_time(tiny_beir, tiny_st):
    """Defect 4: the default k=1000 made every ef < 1000 point the ef=1000 search."""
    with pytest.raises(config_mod.ConfigError,
                       match=r"pipelines\[0\]\.retriever\.index\.search\.ef: 64 < k=1000; "
                             r"hnswlib searches with max\(ef, k\), so this point would measure "
                             r"ef=1000\. Set k <= ef \(k: 10 for an ANN sweep\) or ef >= k"):
        config(tiny_beir, tiny_st, {"type": "hnsw", "search": {"ef": [1000, 64]}}, k=1000)


def meta_flags(out, name):
    return json.loads((out.out_dir / "metadata.json").read_text())["pipelines"][name]["result_flags"]


def test_short_results_are_flagged(tiny_beir, tiny_st, tmp_path):
    """k larger than what IVF probes (1 of 4 lists over 5 docs): fewer than k results come back."""
    cfg = config(tiny_beir, tiny_st, {"type": "ivf", "build": {"nlist": 2, "train_size": 5},
                                      "search": {"nprobe": 1}})
    out = run_benchmark(cfg, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    flags = meta_flags(out, "dense")
    assert flags.get("retriever:dense: short", 0) > 0


def test_flat_search_is_exact_and_second_run_hits_the_cache(tiny_beir, tiny_st, tmp_path):
    cfg = config(tiny_beir, tiny_st, {"type": "flat"})
    first = run_benchmark(cfg, tmp_path / "a", cache_dir=tmp_path / "cache", progress=False)
    timings = (first.out_dir / "timings.csv").read_text()
    assert "dense,index,build,embedding_cache_hit,0.0" in timings
    assert "dense,index,build,max_length,128" in timings and "dense,index,build,truncated_docs,0" in timings
    second = run_benchmark(cfg, tmp_path / "b", cache_dir=tmp_path / "cache", progress=False)
    assert "dense,index,build,embedding_cache_hit,1.0" in (second.out_dir / "timings.csv").read_text()
    assert (first.out_dir / "metrics.csv").read_bytes() == (second.out_dir / "metrics.csv").read_bytes()
    assert "dense,ann_recall@5,1.0" in (first.out_dir / "metrics.csv").read_text()  # flat is exact


def test_metric_mismatch_is_refused(tiny_beir, tiny_st, tmp_path):
    cfg = config_mod.validate({
        "name": "dense", "dataset": {"name": str(tiny_beir)}, "isolation": "none",
        "pipelines": [{"name": "dot", "retriever": {
            "type": "dense", "model": tiny_st, "normalize": False,
            "index": {"type": "annoy", "build": {"metric": "angular"}}}}]})
    out = run_benchmark(cfg, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    assert "ranks by cosine but the model's similarity is dot product" in out.results[0].error


def test_bad_sweep_parameter_is_a_config_error(tiny_beir, tiny_st):
    with pytest.raises(config_mod.ConfigError, match=r"pipelines\[0\]\.retriever\.index\.search: "
                                                     r"unknown parameter\(s\) nprobe for ann hnsw"):
        config(tiny_beir, tiny_st, {"type": "hnsw", "search": {"nprobe": [1, 2]}})


def test_truncation_is_counted(tiny_st, tmp_path):
    from harness.core.context import RunContext
    from harness.retrievers.dense import BiEncoderRetriever, DenseParams
    from harness.core.types import Document
    dense = BiEncoderRetriever(DenseParams(model=tiny_st, max_length=8),
                               RunContext(cache_dir=tmp_path, progress=False))
    corpus = {"long": Document("long", "", "word " * 50), "short": Document("short", "", "word")}
    dense.document_arrays(corpus)
    assert dense.stats["truncated_docs"] == 1 and dense.stats["max_length"] == 8
