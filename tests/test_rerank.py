import math
import random
import warnings

import pytest

from harness.core import registry
from harness.core.context import RunContext
from harness.core.errors import DataError, HarnessError, ModelUnavailableError
from harness.evaluation.metrics import evaluate, parse_measures
from harness.core.protocols import Reranker
from harness.core.protocols import NeedsQrels
from harness.rerankers import OracleReranker, below_depth_scores, rerank_run
from harness.core.types import Document, ranked

from tiny_models import tiny_bert_classifier


def order(docs):
    return [doc_id for doc_id, _ in ranked(docs)]


# ---- shared mechanics ---------------------------------------------------------------------------

def test_rerank_run_puts_reranked_first_and_keeps_the_rest_in_order():
    # Original trec_eval order: e (9), d (5), c (5), b (5), a (1) -- c/b/d tie, broken by id desc.
    run = {"q": {"a": 1.0, "b": 5.0, "c": 5.0, "d": 5.0, "e": 9.0}}
    new = {"e": 0.1, "d": 0.3, "c": 0.2}
    out = rerank_run(run, 3, lambda pairs: [new[d] for _, d in pairs])["q"]
    assert order(out) == ["d", "c", "e", "b", "a"]
    assert {d: out[d] for d in new} == new  # the scorer's scores are kept
    assert min(new.values()) > out["b"] > out["a"]


def test_rerank_run_depth_beyond_the_list_and_empty_queries():
    run = {"q1": {"a": 2.0, "b": 1.0}, "q2": {}}
    out = rerank_run(run, 100, lambda pairs: [1.0 if d == "b" else 0.0 for _, d in pairs])
    assert out == {"q1": {"b": 1.0, "a": 0.0}, "q2": {}}


def test_rerank_run_scores_all_queries_in_one_call():
    run = {f"q{i}": {f"d{j}": float(j) for j in range(5)} for i in range(3)}
    calls = []
    rerank_run(run, 2, lambda pairs: calls.append(list(pairs)) or [0.0] * len(pairs))
    assert len(calls) == 1
    assert calls[0] == [(q, d) for q in ("q0", "q1", "q2") for d in ("d4", "d3")]


def test_below_depth_scores_stay_distinct_at_any_magnitude():
    for lowest in (0.0, -3.5, 1e20, -1e20, 1e-30):
        scores = below_depth_scores(lowest, 1000)
        assert all(a > b for a, b in zip([lowest] + scores, scores))


def test_rerank_run_rejects_bad_input():
    run = {"q": {"a": 1.0}}
    with pytest.raises(ValueError, match="depth must be >= 1"):
        rerank_run(run, 0, lambda pairs: [0.0] * len(pairs))
    with pytest.raises(DataError, match="query 'q', doc 'a'.*nan"):
        rerank_run(run, 1, lambda pairs: [float("nan")])
    with pytest.raises(HarnessError, match="2 scores for 1 pairs"):
        rerank_run(run, 1, lambda pairs: [0.0, 1.0])


# ---- oracle ------------------------------------------------------------------------------------

def dcg(gains):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ideal_ndcg10_with_top(run, qrels, depth):
    """By hand: the best nDCG@10 reachable by reordering only each query's top `depth`."""
    values = []
    for qid, grades in qrels.items():
        gains = [grades.get(d, 0) for d in order(run.get(qid, {}))]
        best = sorted(gains[:depth], reverse=True) + gains[depth:]
        idcg = dcg(sorted((g for g in grades.values() if g > 0), reverse=True)[:10])
        values.append(dcg(best[:10]) / idcg)
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def oracle_case():
    rng = random.Random(11)
    corpus = {f"d{j}": Document(f"d{j}", "", f"text {j}") for j in range(200)}
    run, qrels = {}, {}
    for i in range(8):
        docs = rng.sample(sorted(corpus), 60)
        run[f"q{i}"] = {d: float(rng.randint(0, 20)) for d in docs}  # ties on purpose
        judged = rng.sample(docs, 12) + rng.sample(sorted(corpus), 4)  # some never retrieved
        qrels[f"q{i}"] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        qrels[f"q{i}"][docs[0]] = 2  # at least one relevant document per query
    queries = {qid: f"query {qid}" for qid in run}
    return queries, corpus, run, qrels


@pytest.mark.parametrize("depth", [1, 3, 5, 10, 20, 60, 100])
def test_oracle_reaches_the_ideal_at_each_depth(oracle_case, depth):
    queries, corpus, run, qrels = oracle_case
    oracle = registry.get("reranker", "oracle").factory(None, RunContext())
    assert isinstance(oracle, NeedsQrels) and isinstance(oracle, Reranker)
    oracle.set_qrels(qrels)
    out = oracle.rerank(queries, corpus, run, depth)
    got = evaluate(qrels, out, parse_measures(["nDCG@10"])).aggregate["nDCG@10"]
    assert got == pytest.approx(ideal_ndcg10_with_top(run, qrels, depth), abs=1e-12)
    for qid in run:  # below the depth: the first stage's order, unchanged
        assert order(out[qid])[depth:] == order(run[qid])[depth:]
        assert set(out[qid]) == set(run[qid])


def test_oracle_gains_over_the_first_stage_and_grows_with_depth(oracle_case):
    queries, corpus, run, qrels = oracle_case
    oracle = OracleReranker()
    oracle.set_qrels(qrels)
    measure = parse_measures(["nDCG@10"])
    first = evaluate(qrels, run, measure).aggregate["nDCG@10"]
    by_depth = [evaluate(qrels, oracle.rerank(queries, corpus, run, d), measure).aggregate["nDCG@10"]
                for d in (1, 5, 10, 60)]
    assert by_depth == sorted(by_depth) and by_depth[-1] > first
    unjudged = sum(d not in qrels[q] for q in run for d in run[q])
    assert oracle.stats["pairs"] == 8 * 60 and oracle.stats["unjudged_pairs"] == unjudged > 0


def test_oracle_without_qrels_and_unknown_inputs_fail(oracle_case):
    queries, corpus, run, _ = oracle_case
    with pytest.raises(HarnessError, match="set_qrels"):
        OracleReranker().rerank(queries, corpus, run, 5)
    oracle = OracleReranker()
    oracle.set_qrels({})
    with pytest.raises(DataError, match="not in the corpus"):
        oracle.rerank(queries, corpus, {"q0": {"nope": 1.0}}, 5)
    with pytest.raises(DataError, match="no text"):
        oracle.rerank({}, corpus, run, 5)


# ---- cross-encoder with a tiny BERT checkpoint ----------------------------------------------------

@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory):
    return str(tiny_bert_classifier(tmp_path_factory.mktemp("models") / "tiny-ce", seed=3))


@pytest.fixture(scope="module")
def ce_data():
    words = "cell protein gene cancer virus study results patients treatment effect data".split()
    rng = random.Random(5)
    corpus = {}
    for j in range(30):
        length = 60 if j % 7 == 0 else rng.randint(3, 8)  # docs d0, d7, d14, ... are long
        corpus[f"d{j:02d}"] = Document(f"d{j:02d}", f"title {j}",
                                       " ".join(rng.choice(words) for _ in range(length)))
    queries = {f"q{i}": " ".join(rng.sample(words, 3)) for i in range(4)}
    run = {qid: {d: float(30 - int(d[1:]) + 0.5 * i) for d in corpus} for i, qid in
           enumerate(queries)}  # every query: d00 first, d29 last
    return queries, corpus, run


def make_ce(model, **params):
    plugin = registry.get("reranker", "cross-encoder")
    return plugin.factory(plugin.params(model=model, **params), RunContext(device="cpu"))


def reference_logits(model_dir, pairs):
    """Independent of the plugin: plain transformers, one pair at a time."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return [float(model(**tokenizer(q, d, truncation=True, max_length=512,
                                        return_tensors="pt")).logits[0, 0]) for q, d in pairs]


def test_cross_encoder_reranks_by_the_model_logits(tiny_ce, ce_data):
    queries, corpus, run = ce_data
    depth = 10
    ce = make_ce(tiny_ce, batch_size=4)
    assert isinstance(ce, Reranker)
    out = ce.rerank(queries, corpus, run, depth)
    for qid in queries:
        head = order(run[qid])[:depth]
        expected = reference_logits(tiny_ce, [(queries[qid], corpus[d].full_text) for d in head])
        assert [out[qid][d] for d in head] == pytest.approx(expected, abs=1e-4)
        assert order(out[qid])[:depth] == order(dict(zip(head, expected)))
        assert order(out[qid])[:depth] != head  # the model did change the order
        assert order(out[qid])[depth:] == order(run[qid])[depth:]
    stats = ce.stage_stats()
    assert stats["pairs"] == 4 * depth and stats["fp16"] is False and stats["device"] == "cpu"
    assert ce.rerank(queries, corpus, run, depth) == out  # deterministic, bit for bit


def test_cross_encoder_batches_across_queries_without_changing_scores(tiny_ce, ce_data):
    queries, corpus, run = ce_data
    small = make_ce(tiny_ce, batch_size=3).rerank(queries, corpus, run, 5)  # batches span queries
    large = make_ce(tiny_ce, batch_size=64).rerank(queries, corpus, run, 5)
    for qid in queries:
        assert order(small[qid]) == order(large[qid])
        assert small[qid] == pytest.approx(large[qid], abs=1e-5)


def test_cross_encoder_depth_larger_than_the_list(tiny_ce, ce_data):
    queries, corpus, run = ce_data
    short = {qid: dict(ranked(docs)[:6]) for qid, docs in run.items()}
    out = make_ce(tiny_ce).rerank(queries, corpus, short, 50)
    assert all(set(out[q]) == set(short[q]) for q in short)
    assert out == make_ce(tiny_ce).rerank(queries, corpus, short, 6)


def test_cross_encoder_counts_truncated_pairs(tiny_ce, ce_data):
    queries, corpus, run = ce_data
    ce = make_ce(tiny_ce, max_length=24)
    ce.rerank(queries, corpus, run, 15)
    stats = ce.stage_stats()
    # Within each query's top 15 (d00..d14) the long documents are d00, d07 and d14.
    assert stats["truncated_pairs"] == 4 * 3
    assert stats["max_length"] == 24 and stats["longest_pair_tokens"] > 60
    # The count agrees with the tokenizer encoding each pair as the model sees it.
    tokenizer = ce.model.tokenizer
    lengths = [len(tokenizer(queries[q], corpus[d].full_text)["input_ids"])
               for q in queries for d in order(run[q])[:15]]
    assert stats["longest_pair_tokens"] == max(lengths)
    assert sum(n > 24 for n in lengths) == 12
    ce.rerank(queries, corpus, run, 15)  # again: document counts come from the memo
    assert ce.stage_stats()["truncated_pairs"] == 12
    ce.rerank(queries, corpus, run, 1)  # the stats are the last call's
    assert ce.stage_stats()["truncated_pairs"] == 4 and ce.stage_stats()["pairs"] == 4


def test_cross_encoder_counts_truncation_outside_the_timed_rerank(tiny_ce, ce_data, monkeypatch):
    queries, corpus, run = ce_data
    ce = make_ce(tiny_ce, max_length=24)
    tokenized = []
    real = ce._token_counts
    monkeypatch.setattr(ce, "_token_counts", lambda texts: tokenized.append(texts) or real(texts))
    ce.rerank(queries, corpus, run, 15)
    assert tokenized == []  # the rerank call (what the runner times) only scores
    assert ce.stage_stats()["truncated_pairs"] == 12 and tokenized


def test_cross_encoder_fp16_on_cpu_is_ignored_with_a_warning(tiny_ce, ce_data):
    queries, corpus, run = ce_data
    with pytest.warns(UserWarning, match="fp16 is ignored on device 'cpu'"):
        half = make_ce(tiny_ce, fp16=True)
    assert half.fp16 is False and half.stage_stats()["fp16"] is False
    out = half.rerank(queries, corpus, run, 5)
    assert half.stage_stats()["fp16"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning without fp16
        assert out == make_ce(tiny_ce).rerank(queries, corpus, run, 5)


def test_cross_encoder_unavailable_model_fails_before_loading(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="'org/no-such-cross-encoder' is not available"):
        make_ce("org/no-such-cross-encoder")


# ---- the throughput benchmark ------------------------------------------------------------------

def run_benchmark(monkeypatch, *argv):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "rerank_throughput.py"
    spec = importlib.util.spec_from_file_location("rerank_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr("sys.argv", ["rerank_throughput.py", *argv])
    return module.main()


def test_benchmark_reports_throughput_and_stage_split(monkeypatch, tmp_path, capsys):
    out = tmp_path / "numbers.json"
    assert run_benchmark(monkeypatch, "--queries", "2", "--extra-docs", "20", "--depth", "5",
                         "--latency-queries", "1", "--json", str(out)) == 0
    import json
    numbers = json.loads(out.read_text())
    (result,) = numbers["runs"]
    assert 0 < result["batch_pairs"] <= 2 * 5 and result["pairs_per_s"] > 0
    assert set(result["single"]) == {"first_stage", "rerank", "total"}
    assert result["single"]["rerank"]["n_queries"] == 1 and result["fp16"] is False
    assert "pairs/s" in capsys.readouterr().out


def test_benchmark_cuda_part_skips_without_a_gpu(monkeypatch, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the CUDA part would run")
    assert run_benchmark(monkeypatch, "--device", "cuda") == 0
    assert "CUDA is not available" in capsys.readouterr().out


# ---- provenance through `harness run` ------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_towers(tmp_path_factory):
    from tiny_models import tiny_dpr
    return tuple(map(str, tiny_dpr(tmp_path_factory.mktemp("dpr"))))


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    from tiny_models import tiny_sentence_transformer
    return str(tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "model"))


def test_metadata_records_stage_stats_and_models(tiny_beir, tiny_towers, tiny_ce, tiny_st,
                                                 tmp_path):
    """Truncation, precision, cache and judgment counts and model fingerprints reach
    metadata.json, on a first run, a resumed one and one served from the embedding cache."""
    import json

    from harness import config as config_mod
    from harness.execution.benchmark import run_benchmark as harness_run
    from harness.core.models import model_fingerprint
    question, context = tiny_towers
    dpr = {"type": "dpr", "question_model": question, "context_model": context, "max_length": 8}
    cfg = config_mod.validate({
        "name": "prov", "dataset": {"name": str(tiny_beir)}, "k": 10, "isolation": "none",
        "measures": ["nDCG@10"], "timing": {"latency_queries": 2, "warmup": 1},
        "pipelines": [
            {"name": "ce", "retriever": dpr,
             "rerank": {"type": "cross-encoder", "model": tiny_ce, "max_length": 24, "depth": 3}},
            {"name": "oracle", "retriever": dpr, "rerank": {"type": "oracle", "depth": 3}},
            {"name": "maxsim", "retriever": dpr,
             "rerank": {"type": "maxsim", "model": tiny_st, "max_length": 8, "depth": 3}}]})

    def pipelines(out_dir, cache):
        out = harness_run(cfg, out_dir, cache_dir=tmp_path / cache, progress=False)
        return out, json.loads((out.out_dir / "metadata.json").read_text())["pipelines"]

    first, meta = pipelines(tmp_path / "a", "cache")
    ce = meta["ce>>cross-encoder@3"]
    retriever = ce["stage_stats"]["retriever:dpr"]
    assert retriever["truncated_docs"] > 0 and retriever["max_length"] == 8
    assert retriever["embedding_cache_hit"] == 0.0
    stats = ce["stage_stats"]["reranker:cross-encoder@3"]
    assert stats["fp16"] is False and stats["max_length"] == 24 and stats["pairs"] == 4 * 3
    assert stats["truncated_pairs"] > 0  # the titles-less docs, tokenized letter by letter
    assert ce["models"] == {
        "retriever:dpr": {"question_model": {"name": question,
                                             "fingerprint": model_fingerprint(question)},
                          "context_model": {"name": context,
                                            "fingerprint": model_fingerprint(context)}},
        "reranker:cross-encoder@3": {"model": {"name": tiny_ce,
                                               "fingerprint": model_fingerprint(tiny_ce)}}}
    assert meta["oracle>>oracle@3"]["stage_stats"]["reranker:oracle@3"]["unjudged_pairs"] > 0
    assert "reranker:oracle@3" not in meta["oracle>>oracle@3"]["models"]  # it loads none
    maxsim = meta["maxsim>>maxsim@3"]
    assert maxsim["models"]["reranker:maxsim@3"]["model"]["fingerprint"] == \
        model_fingerprint(tiny_st)
    assert maxsim["stage_stats"]["reranker:maxsim@3"]["truncated_docs"] > 0
    assert meta["ce"]["stage_stats"] == {"retriever:dpr": retriever}

    resumed, again = pipelines(tmp_path / "a", "cache")  # every node read back from disk
    assert resumed.computed_nodes == []
    assert again == meta
    cached, warm = pipelines(tmp_path / "b", "cache")  # recomputed on cached document vectors
    assert len(cached.computed_nodes) == 4
    warm_retriever = warm["ce"]["stage_stats"]["retriever:dpr"]
    assert warm_retriever["embedding_cache_hit"] == 1.0
    assert warm_retriever["truncated_docs"] == retriever["truncated_docs"]
    for name in meta:
        assert warm[name]["models"] == meta[name]["models"]
        assert warm[name]["stage_stats"].keys() == meta[name]["stage_stats"].keys()
