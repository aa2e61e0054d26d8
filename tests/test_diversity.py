"""Diversity measures: ILS@k through `harness run` against numpy, the quality-vs-diversity plot,
and alpha-nDCG over subtopic qrels (a hand-computed case; refused on plain qrels or without
pyndeval, before any work)."""
import importlib.util
import json

import numpy as np
import pytest

from harness import config as config_mod
from harness.core.errors import ConfigError, DataError
from harness.core.types import ranked
from harness.evaluation.metrics import evaluate, parse_measures
from harness.execution.benchmark import run_benchmark
from test_mmr import outcome, tiny_beir_module, tiny_st  # noqa: F401  (shared fixtures)


def test_ils_matches_numpy(outcome, tiny_st):  # noqa: F811
    from harness.execution.benchmark import prepare_dataset
    from harness.retrievers.dense import BiEncoderRetriever, DenseParams
    encoder = BiEncoderRetriever(DenseParams(model=tiny_st), outcome.ctx)
    dataset = prepare_dataset(config_mod.load(outcome.out_dir / "config.yaml"), None)
    _, arrays = encoder.document_arrays(dataset.corpus)
    rows = {d: i for i, d in enumerate(dataset.corpus)}
    for res in outcome.results:
        ev = outcome.evaluations[res.pipeline.name]
        expected = {}
        for qid, docs in res.run.items():
            top = [arrays["vectors"][rows[d]] for d, _ in ranked(docs)[:3]]
            if len(top) < 2:
                continue
            pairs = [float(np.dot(a, b)) for i, a in enumerate(top) for b in top[i + 1:]]
            expected[qid] = sum(pairs) / len(pairs)
        assert ev.per_query["ILS@3"] == pytest.approx(expected, abs=1e-6)
        assert ev.aggregate["ILS@3"] == pytest.approx(np.mean(list(expected.values())))


def test_mmr_lowers_ils_and_the_report_plots_it(outcome):  # noqa: F811
    ev = outcome.evaluations
    assert ev["dense>>mmr[lambda_mult=0.5]@4"].aggregate["ILS@3"] <= ev["dense"].aggregate["ILS@3"]
    from harness.reports.plots import all_plots
    from harness.storage.results_folder import load_results
    plots = {p.key: p for p in all_plots(load_results(outcome.out_dir))}
    assert "diversity" in plots and "<svg" in plots["diversity"].svg


def test_diversity_cutoff_is_checked_at_config_time(tiny_beir_module, tiny_st):  # noqa: F811
    with pytest.raises(ConfigError, match=r"diversity.at: \[50\] > k=5"):
        config_mod.validate({"name": "x", "dataset": {"name": str(tiny_beir_module)}, "k": 5,
                             "diversity": {"model": tiny_st, "at": [50]},
                             "pipelines": [{"name": "b", "retriever": {"type": "bm25s"}}]})


SUBTOPICS = [("1", "a", "s1", 1), ("1", "b", "s1", 1), ("1", "c", "s2", 1)]


needs_pyndeval = pytest.mark.skipif(importlib.util.find_spec("pyndeval") is None,
                                    reason="the [diversity] extra")


@needs_pyndeval
def test_alpha_ndcg_hand_case():
    measures = parse_measures(["alpha_nDCG(alpha=0.5)@10"])
    qrels = {"1": {"a": 1, "b": 1, "c": 1}}
    # a, c, b covers both subtopics first: ideal. a, b, c repeats s1 at rank 2:
    # (1 + 0.5/log2(3) + 1/log2(4)) / (1 + 1/log2(3) + 0.5/log2(4)) = 0.96520.
    best = evaluate(qrels, {"1": {"a": 3.0, "c": 2.0, "b": 1.0}}, measures, SUBTOPICS)
    worse = evaluate(qrels, {"1": {"a": 3.0, "b": 2.0, "c": 1.0}}, measures, SUBTOPICS)
    key = str(measures[0])  # ir_measures' spelling (alpha 0.5 is its default)
    assert best.aggregate[key] == pytest.approx(1.0)
    assert worse.aggregate[key] == pytest.approx(0.96520, abs=1e-5)


def subtopic_dataset(folder, with_subtopics=True):
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as fh:
        for d, text in {"a": "red apples", "b": "red apples pie", "c": "green apples"}.items():
            fh.write(json.dumps({"_id": d, "text": text}) + "\n")
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "apples"}) + "\n")
    if with_subtopics:
        (folder / "qrels" / "test.tsv").write_text(
            "query-id\tcorpus-id\tscore\tsubtopic\n1\ta\t1\ts1\n1\tb\t1\ts1\n1\tc\t1\ts2\n"
            "1\ta\t2\ts3\n")
    else:
        (folder / "qrels" / "test.tsv").write_text("1\ta\t1\n1\tb\t1\n1\tc\t1\n")
    return folder


def alpha_config(folder):
    return config_mod.validate({
        "name": "alpha", "dataset": {"name": str(folder)}, "k": 3, "isolation": "none",
        "measures": ["nDCG@3", "alpha_nDCG@3"], "timing": {"latency_queries": 0},
        "pipelines": [{"name": "b", "retriever": {"type": "bm25s"}}]})


@needs_pyndeval
def test_subtopic_qrels_through_a_run(tmp_path):
    from harness.datasets import load_beir
    folder = subtopic_dataset(tmp_path / "ds")
    ds = load_beir(folder)
    assert ds.qrels == {"1": {"a": 2, "b": 1, "c": 1}}  # each pair's highest grade
    assert len(ds.subtopics) == 4
    out = run_benchmark(alpha_config(folder), tmp_path / "out", progress=False)
    run = out.results[0].run["1"]
    expected = evaluate(ds.qrels, {"1": run}, parse_measures(["alpha_nDCG@3"]), ds.subtopics)
    assert out.evaluations["b"].aggregate["alpha_nDCG@3"] == \
        expected.aggregate["alpha_nDCG@3"] > 0


@needs_pyndeval
def test_alpha_ndcg_refused_on_plain_qrels_before_work(tmp_path):
    folder = subtopic_dataset(tmp_path / "ds", with_subtopics=False)
    with pytest.raises(DataError, match="alpha_nDCG@3 needs qrels with a subtopic column"):
        run_benchmark(alpha_config(folder), tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "nodes").exists()


def test_alpha_ndcg_without_pyndeval_names_the_install(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyndeval" else real(name, *a))
    from harness.evaluation.diversity import check_alpha
    with pytest.raises(ConfigError, match=r"pip install 'retrieval-harness\[diversity\]'"):
        check_alpha(parse_measures(["alpha_nDCG@3"]), [], "x")


def test_subtopic_rows_judged_twice_are_refused(tmp_path):
    from harness.datasets import load_beir
    folder = subtopic_dataset(tmp_path / "ds")
    path = folder / "qrels" / "test.tsv"
    path.write_text(path.read_text() + "1\tb\t1\ts1\n")
    with pytest.raises(DataError, match=r"test.tsv:6: query '1', doc 'b', subtopic 's1' is judged "
                                        r"again \(first on line 3\)"):
        load_beir(folder)
