"""The `mmr` reranker: greedy MMR against hand-computed cases (max similarity to *every* pick,
not only the last), and through `harness run`: lambda 1.0 reproduces the input ranking exactly,
document embeddings come from the dense stage's cache (no second forward pass)."""
import json

import numpy as np
import pytest

from harness import config as config_mod
from harness.core.types import ranked
from harness.execution.benchmark import run_benchmark
from harness.rerankers.mmr import minmax, mmr_order
from tiny_models import tiny_sentence_transformer

E = np.eye(3)


def test_mmr_trades_relevance_for_novelty_by_hand():
    # rel after min-max: [1, 0.8, 0]; d1 duplicates d0, d2 is orthogonal.
    rel = minmax(np.array([3.0, 2.8, 2.0]))
    assert rel.tolist() == pytest.approx([1.0, 0.8, 0.0])
    vectors = np.array([E[0], E[0], E[1]])
    # lambda 0.5: d1 scores 0.5*0.8 - 0.5*1 = -0.1 < d2's 0.5*0 - 0.5*0 = 0.
    assert mmr_order(rel, vectors, 0.5) == [0, 2, 1]
    # lambda 0.9: d1 scores 0.72 - 0.1 = 0.62 > d2's 0.
    assert mmr_order(rel, vectors, 0.9) == [0, 1, 2]


def test_mmr_penalises_similarity_to_every_pick_not_only_the_last():
    rel = minmax(np.array([4.0, 3.0, 2.9, 1.0]))  # [1, .667, .633, 0]
    vectors = np.array([E[0], E[1], E[0], E[2]])  # d2 duplicates d0, the first pick
    # After d0, d1: d2 = .5*.633 - .5*max(1, 0) < 0 = d3's; a last-pick-only variant (LlamaIndex)
    # would compare d2 with d1 alone and pick it third.
    assert mmr_order(rel, vectors, 0.5) == [0, 1, 3, 2]


def test_lambda_one_and_ties_keep_input_order():
    rel = minmax(np.array([2.0, 2.0, 1.0, 1.0]))
    vectors = np.array([E[0], E[0], E[0], E[1]])
    assert mmr_order(rel, vectors, 1.0) == [0, 1, 2, 3]
    assert minmax(np.array([5.0, 5.0])).tolist() == [1.0, 1.0]


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    return str(tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "model"))


@pytest.fixture(scope="module")
def outcome(tiny_beir_module, tiny_st, tmp_path_factory):
    mmr = {"type": "mmr", "model": tiny_st, "depth": 4, "sweep": {"lambda_mult": [1.0, 0.5]}}
    cfg = config_mod.validate({
        "name": "mmr", "dataset": {"name": str(tiny_beir_module)}, "k": 5, "isolation": "none",
        "measures": ["nDCG@5"], "timing": {"latency_queries": 2, "warmup": 1},
        "diversity": {"model": tiny_st, "at": [3]},
        "pipelines": [
            {"name": "dense", "retriever": {"type": "dense", "model": tiny_st}, "rerank": mmr},
            {"name": "bm25s", "retriever": {"type": "bm25s"}, "rerank": mmr}]})
    return run_benchmark(cfg, tmp_path_factory.mktemp("out"), progress=False)


@pytest.fixture(scope="module")
def tiny_beir_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "ds"
    (folder / "qrels").mkdir(parents=True)
    docs = ["red apples and green pears", "green tea leaves", "red wine grapes",
            "apple pie recipe with red apples", "pears poached in red wine", "red apples again",
            "red red apples and red wine"]
    with open(folder / "corpus.jsonl", "w") as fh:
        for i, text in enumerate(docs):
            fh.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w") as fh:
        for q, text in {"q1": "red apples", "q2": "green pears", "q3": "red wine"}.items():
            fh.write(json.dumps({"_id": q, "text": text}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("q1\td3\t1\nq1\td0\t1\nq2\td0\t1\nq3\td4\t2\n")
    return folder


def runs(outcome):
    return {r.pipeline.name: r.run for r in outcome.results}


@pytest.mark.parametrize("first", ["dense", "bm25s"])
def test_lambda_one_reproduces_the_input_ranking_exactly(outcome, first):
    got = runs(outcome)
    base, mmr = got[first], got[f"{first}>>mmr[lambda_mult=1.0]@4"]
    for qid in base:
        assert [d for d, _ in ranked(mmr[qid])] == [d for d, _ in ranked(base[qid])]
    reranked = outcome.evaluations[f"{first}>>mmr[lambda_mult=1.0]@4"].aggregate
    assert reranked == {m: v for m, v in outcome.evaluations[first].aggregate.items()
                        if not m.startswith("ann_recall")}  # a first stage's own measure


def test_lambda_half_reorders_within_depth_and_keeps_the_tail(outcome):
    got = runs(outcome)
    base, mmr = got["dense"], got["dense>>mmr[lambda_mult=0.5]@4"]
    for qid in base:
        before, after = [d for d, _ in ranked(base[qid])], [d for d, _ in ranked(mmr[qid])]
        assert after[0] == before[0]  # first pick: the most relevant
        assert set(after[:4]) == set(before[:4]) and after[4:] == before[4:]


def test_mmr_reads_the_dense_stage_embeddings(outcome):
    meta = json.loads((outcome.out_dir / "metadata.json").read_text())
    stats = meta["pipelines"]["dense>>mmr[lambda_mult=0.5]@4"]["stage_stats"]["reranker:mmr@4"]
    assert stats["embedding_cache_hit"] == 1.0 and stats["lambda_mult"] == 0.5
