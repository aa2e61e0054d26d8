"""DPR two-tower retriever with tiny DPR and BERT checkpoints built on the fly."""
import numpy as np
import pytest

from harness.core.context import RunContext
from harness.core.errors import ConfigError, ModelUnavailableError
from harness.retrievers.dpr import DPRParams, DPRRetriever
from harness.retrievers.vector import IndexSpec
from harness.core.types import Document, ranked

CORPUS = {f"d{i}": Document(f"d{i}", "", text) for i, text in enumerate([
    "cancer cells and protein study", "virus gene data", "the treatment effect was high",
    "dense retrieval model search", "patients with low protein", "fusion of sparse and dense",
    "query document rank results", "increased gene effect in cells", "a study of the virus",
    "high and low data"])}
QUERIES = {"q1": "protein in cancer cells", "q2": "dense search model", "q3": "virus"}


@pytest.fixture(scope="module")
def dpr_towers(tmp_path_factory):
    from tiny_models import tiny_dpr
    question, context = tiny_dpr(tmp_path_factory.mktemp("dpr"))
    return str(question), str(context)


@pytest.fixture(scope="module")
def bert_pair(tmp_path_factory):
    from tiny_models import tiny_bert_encoder
    root = tmp_path_factory.mktemp("bert-pair")
    return str(tiny_bert_encoder(root / "q", seed=1)), str(tiny_bert_encoder(root / "c", seed=2))


def reference_dpr(question, context, texts, role):
    """Vectors straight from transformers: the pooler output of the right DPR class."""
    import torch
    from transformers import (AutoTokenizer, DPRContextEncoder, DPRQuestionEncoder)
    path = question if role == "question" else context
    cls = DPRQuestionEncoder if role == "question" else DPRContextEncoder
    model, tok = cls.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    with torch.no_grad():
        return np.stack([model(**tok(t, return_tensors="pt")).pooler_output[0].numpy()
                         for t in texts])


def exact_top(q_vectors, d_vectors, k):
    scores = q_vectors @ d_vectors.T
    ids = list(CORPUS)
    return [dict(ranked({ids[j]: float(s) for j, s in enumerate(row)})[:k]) for row in scores]


def test_dpr_retrieves_by_dot_product_of_the_two_towers(dpr_towers, tmp_path):
    question, context = dpr_towers
    retriever = DPRRetriever(DPRParams(question_model=question, context_model=context,
                                       batch_size=3), RunContext(cache_dir=tmp_path, progress=False))
    assert retriever.similarity == "dot" and retriever.question.is_dpr
    retriever.index(CORPUS)
    run = retriever.search(QUERIES, k=4)
    texts = [CORPUS[d].full_text for d in CORPUS]
    want = exact_top(reference_dpr(question, context, list(QUERIES.values()), "question"),
                     reference_dpr(question, context, texts, "context"), 4)
    for qid, expected in zip(QUERIES, want):
        # The same documents with the same scores; the order may differ only between scores
        # within float noise (the tiny random towers give near-ties, 5e-7 apart).
        assert run[qid] == pytest.approx(dict(expected), rel=1e-4)
        order = [d for d, _ in ranked(run[qid])]
        for above, below in zip(order, order[1:]):
            assert expected[above] >= expected[below] - 1e-5
    # The towers differ: a question encoded by the context tower is another vector.
    q_as_ctx = retriever.context.encode(["virus"], 2)
    assert not np.allclose(retriever.encode_queries(["virus"]), q_as_ctx, atol=1e-3)


def test_dpr_document_vectors_are_cached(dpr_towers, tmp_path):
    question, context = dpr_towers
    params = DPRParams(question_model=question, context_model=context)
    first = DPRRetriever(params, RunContext(cache_dir=tmp_path, progress=False))
    first.index(CORPUS)
    second = DPRRetriever(params, RunContext(cache_dir=tmp_path, progress=False))
    second.index(CORPUS)
    assert (first.forward_passes, second.forward_passes) == (len(CORPUS), 0)
    assert second.stats["embedding_cache_hit"] == 1.0
    assert first.search(QUERIES, 5) == second.search(QUERIES, 5)
    # Another pooling or length is another entry.
    third = DPRRetriever(DPRParams(question_model=question, context_model=context, max_length=4),
                         RunContext(cache_dir=tmp_path, progress=False))
    third.index(CORPUS)
    assert third.forward_passes == len(CORPUS)
    assert third.stats["truncated_docs"] > 0


def test_dpr_projection_dim(tmp_path):
    from tiny_models import tiny_dpr
    question, context = tiny_dpr(tmp_path / "proj", projection_dim=8)
    retriever = DPRRetriever(DPRParams(question_model=str(question), context_model=str(context)),
                             RunContext(cache_dir=tmp_path, progress=False))
    assert retriever.encode_queries(["virus"]).shape == (1, 8)


def test_swapped_dpr_towers_are_refused(dpr_towers, tmp_path):
    question, context = dpr_towers
    with pytest.raises(ConfigError, match="DPRContextEncoder checkpoint.*question encoder"):
        DPRRetriever(DPRParams(question_model=context, context_model=question),
                     RunContext(cache_dir=tmp_path, progress=False))


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_any_two_hf_encoders_with_pooling(bert_pair, pooling, tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer
    question, context = bert_pair
    retriever = DPRRetriever(DPRParams(question_model=question, context_model=context,
                                       pooling=pooling), RunContext(cache_dir=tmp_path, progress=False))
    assert not retriever.context.is_dpr
    model, tok = AutoModel.from_pretrained(context).eval(), AutoTokenizer.from_pretrained(context)
    texts = [CORPUS[d].full_text for d in CORPUS]
    with torch.no_grad():
        hidden = [model(**tok(t, return_tensors="pt")).last_hidden_state[0].numpy() for t in texts]
    want = np.stack([h.mean(0) if pooling == "mean" else h[0] for h in hidden])
    got = retriever.encode_documents(texts)["vectors"]  # batched with padding: the mask matters
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    retriever.index(CORPUS)
    run = retriever.search(QUERIES, k=3)
    assert all(len(docs) == 3 for docs in run.values())


def test_dpr_with_an_approximate_backend(dpr_towers, tmp_path):
    question, context = dpr_towers
    ctx = RunContext(cache_dir=tmp_path, progress=False)
    exact = DPRRetriever(DPRParams(question_model=question, context_model=context), ctx)
    exact.index(CORPUS)
    hnsw = DPRRetriever(DPRParams(question_model=question, context_model=context,
                                  index=IndexSpec(type="hnsw", build={"space": "ip"})), ctx)
    hnsw.index(CORPUS)  # 10 vectors: HNSW is exact here
    assert hnsw.forward_passes == 0  # vectors from the cache: one encode for every backend
    assert {q: list(d) for q, d in hnsw.search(QUERIES, 3).items()} == \
        {q: [d for d, _ in ranked(docs)] for q, docs in exact.search(QUERIES, 3).items()}
    cosine = DPRRetriever(DPRParams(question_model=question, context_model=context,
                                    index=IndexSpec(type="hnsw", build={"space": "cosine"})), ctx)
    with pytest.raises(ConfigError, match="dot product"):
        cosine.index(CORPUS)


@pytest.mark.parametrize("field", ["question_model", "context_model"])
def test_unknown_model_fails_fast_offline(dpr_towers, field, monkeypatch):
    question, context = dpr_towers
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    params = {"question_model": question, "context_model": context,
              field: "facebook/dpr-not-here-encoder"}
    with pytest.raises(ModelUnavailableError, match="facebook/dpr-not-here-encoder"):
        DPRRetriever(DPRParams(**params), RunContext())


def test_default_models_fail_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="dpr-question_encoder-single-nq-base"):
        DPRRetriever(DPRParams(), RunContext())


def test_dpr_is_registered():
    from harness.core import registry
    import harness.retrievers.dpr  # noqa: F401  (until the lead lists it in BUILTIN_MODULES)
    assert registry.get("retriever", "dpr").params is DPRParams
