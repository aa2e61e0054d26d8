"""ColBERT PLAID (colbert-ai) with a tiny ColBERT checkpoint built on the fly, on ~50 documents.

Slow: colbert-ai compiles its C++ extensions on first use (minutes on a busy 2-core machine;
they are cached under ~/.cache/torch_extensions afterwards), then index + search take seconds.
"""
import multiprocessing
import os

import pytest

from harness.core.context import RunContext
from harness.core.errors import ModelUnavailableError
from harness.core.types import Document, ranked

pytest.importorskip("colbert")

from harness.retrievers.colbert import (ColBERTParams, ColBERTRetriever,  # noqa: E402
                                        search_settings)

TOPICS = ["cancer cells", "virus gene", "protein treatment", "dense retrieval model",
          "sparse fusion"]
CORPUS = {f"doc-{i:02d}": Document(f"doc-{i:02d}", f"{TOPICS[i % 5]}",
                                   f"{TOPICS[i % 5]} study {i} with {TOPICS[(i * 3) % 5]} data")
          for i in range(50)}
QUERIES = {"q1": "cancer cells study", "q2": "sparse fusion data", "q3": "virus"}


def assert_same_run(got, want):
    assert got.keys() == want.keys()
    for qid in want:
        assert got[qid] == pytest.approx(want[qid], rel=1e-5), qid


def tiny_colbert_checkpoint(folder):
    """A ColBERT checkpoint the way colbert-ai saves one (BaseColBERT.save): HF weights with the
    projection layer, tokenizer with the [unused0]/[unused1] marker tokens, artifact.metadata."""
    import torch
    from colbert.infra import ColBERTConfig
    from colbert.modeling.base_colbert import BaseColBERT
    from transformers import BertConfig, BertModel, BertTokenizerFast
    from tiny_models import tiny_vocab
    bert = folder / "bert"
    bert.mkdir(parents=True)
    vocab = tiny_vocab() + ["[unused0]", "[unused1]"]
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=37,
                         max_position_embeddings=128)).save_pretrained(bert)
    BertTokenizerFast(vocab_file=str(bert / "vocab.txt"), do_lower_case=True,
                      model_max_length=128).save_pretrained(bert)
    torch.manual_seed(1)  # the projection layer's weights
    BaseColBERT(str(bert), ColBERTConfig(dim=16, doc_maxlen=32, query_maxlen=16)).save(
        str(folder / "colbert"))
    return str(folder / "colbert")


def exact_colbert_maxsim(retriever):
    """{qid: {doc id: exact MaxSim}} from the loaded checkpoint's uncompressed embeddings."""
    import numpy as np

    from harness.retrievers.late_interaction import flatten_tokens, maxsim_scores
    searcher = retriever._searcher
    docs = searcher.checkpoint.docFromText([d.full_text for d in CORPUS.values()], bsize=16,
                                           keep_dims=False)[0]
    vectors, offsets = flatten_tokens([d.float().numpy() for d in docs])
    encoded = searcher.encode(list(QUERIES.values()))
    return {qid: dict(zip(CORPUS, maxsim_scores(encoded[i].float().numpy(),
                                                vectors.astype(np.float32), offsets,
                                                normalize=False)))
            for i, qid in enumerate(QUERIES)}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_colbert_checkpoint(tmp_path_factory.mktemp("colbert-ckpt"))


@pytest.mark.slow
def test_colbert_plaid_index_search_and_reuse(checkpoint, tmp_path):
    start_method = multiprocessing.get_start_method(allow_none=True)
    cuda_visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    params = ColBERTParams(checkpoint=checkpoint, nbits=2, doc_maxlen=32, query_maxlen=16)
    ctx = RunContext(cache_dir=tmp_path, progress=False)
    retriever = ColBERTRetriever(params, ctx)
    retriever.index(CORPUS)
    assert retriever.index_builds == 1 and retriever.stats["index_cache_hit"] == 0.0
    # colbert-ai's process-wide changes are undone.
    assert multiprocessing.get_start_method(allow_none=True) == start_method
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == cuda_visible

    run = retriever.search(QUERIES, k=10)
    for qid, docs in run.items():
        assert len(docs) == 10 and set(docs) <= set(CORPUS)  # pids mapped back to doc ids
    # PLAID on 50 documents with ndocs >= corpus scores every document exactly: the top is the
    # exact MaxSim ranking, so one query alone gets the same results as in the batch.
    assert retriever.search({"q2": QUERIES["q2"]}, k=10)["q2"] == pytest.approx(run["q2"])

    # PLAID scores are MaxSim over compressed (2-bit residual) embeddings: close to exact MaxSim
    # over the checkpoint's own embeddings of the same doc (a wrong pid -> doc id map is not).
    exact = exact_colbert_maxsim(retriever)
    for qid, docs in run.items():
        for doc_id, score in docs.items():
            assert score == pytest.approx(exact[qid][doc_id], abs=0.15), (qid, doc_id)
        exact_top = sorted(exact[qid], key=exact[qid].get, reverse=True)[:10]
        assert len(set(exact_top) & set(docs)) >= 7

    again = ColBERTRetriever(params, ctx)
    again.index(CORPUS)
    assert again.index_builds == 0 and again.stats["index_cache_hit"] == 1.0
    assert_same_run(again.search(QUERIES, k=10), run)

    # Search-time parameters reuse the index; index-time ones build another.
    probe = ColBERTRetriever(ColBERTParams(checkpoint=checkpoint, nbits=2, doc_maxlen=32,
                                           query_maxlen=16, ncells=4, ndocs=64), ctx)
    probe.index(CORPUS)
    assert probe.index_builds == 0
    assert [d for d, _ in ranked(probe.search(QUERIES, 5)["q1"])]  # searchable
    ids, texts = list(CORPUS), [d.full_text for d in CORPUS.values()]
    other = ColBERTRetriever(ColBERTParams(checkpoint=checkpoint, nbits=1, doc_maxlen=32), ctx)
    assert other.index_key(ids, texts) != retriever.index_key(ids, texts)

    # An index folder without the doc id map (an interrupted build) is rebuilt, not reused.
    (tmp_path / "colbert" / retriever.index_key(ids, texts) / "harness_doc_ids.json").unlink()
    rebuilt = ColBERTRetriever(params, ctx)
    rebuilt.index(CORPUS)
    assert rebuilt.index_builds == 1
    assert_same_run(rebuilt.search(QUERIES, k=10), run)


def test_search_settings_follow_k_unless_given():
    assert search_settings(ColBERTParams(), 10) == {"ncells": 1, "centroid_score_threshold": 0.5,
                                                    "ndocs": 256}
    assert search_settings(ColBERTParams(), 100)["ncells"] == 2
    assert search_settings(ColBERTParams(), 1000)["ndocs"] == 4096
    given = ColBERTParams(ncells=8, centroid_score_threshold=0.3, ndocs=50)
    assert search_settings(given, 10) == {"ncells": 8, "centroid_score_threshold": 0.3,
                                          "ndocs": 50}


def test_colbert_unknown_checkpoint_fails_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="colbert-ir/colbertv2.0"):
        ColBERTRetriever(ColBERTParams(), RunContext(cache_dir=tmp_path))
    with pytest.raises(ModelUnavailableError, match="no-such-folder"):
        ColBERTRetriever(ColBERTParams(checkpoint=str(tmp_path / "no-such-folder")),
                         RunContext(cache_dir=tmp_path))


def test_colbert_is_registered():
    from harness.core import registry
    assert registry.get("retriever", "colbert").params is ColBERTParams
