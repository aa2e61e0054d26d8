"""MaxSim: the vectorised scorer against a brute-force reference, and the MaxSim reranker."""
import numpy as np
import pytest

from harness.retrievers import late_interaction
from harness.retrievers.late_interaction import maxsim_scores


def brute_force_maxsim(q, docs, normalize):
    def unit(x):
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    scores = []
    for doc in docs:
        qq, dd = (unit(q), unit(doc)) if normalize else (np.float64(q), np.float64(doc))
        if len(dd) == 0:
            scores.append(0.0)
            continue
        scores.append(sum(max(float(qi @ dj) for dj in dd) for qi in qq))
    return np.array(scores)


def flat(docs):
    offsets = np.cumsum([0] + [len(d) for d in docs]).astype(np.int64)
    vectors = np.concatenate(docs).astype(np.float16)
    return vectors, offsets


@pytest.fixture
def random_docs():
    rng = np.random.default_rng(7)
    lengths = [5, 1, 12, 0, 3, 30, 7]  # one empty document
    docs = [rng.normal(size=(n, 8)).astype(np.float16) for n in lengths]
    return rng.normal(size=(4, 8)).astype(np.float32), docs


@pytest.mark.parametrize("normalize", [True, False])
def test_maxsim_matches_brute_force(random_docs, normalize):
    q, docs = random_docs
    vectors, offsets = flat(docs)
    got = maxsim_scores(q, vectors, offsets, normalize=normalize)
    want = brute_force_maxsim(q, [d.astype(np.float32) for d in docs], normalize)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert got[3] == 0.0  # the empty document


def test_maxsim_with_precomputed_inverse_norms(random_docs):
    q, docs = random_docs
    vectors, offsets = flat(docs)
    got = maxsim_scores(q, vectors, offsets, token_inverse_norms=late_interaction.inverse_norms(
        vectors, chunk=4))
    want = brute_force_maxsim(q, [d.astype(np.float32) for d in docs], True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_maxsim_subset_of_rows_in_any_order(random_docs):
    q, docs = random_docs
    vectors, offsets = flat(docs)
    rows = np.array([5, 0, 3, 2])
    got = maxsim_scores(q, vectors, offsets, rows=rows)
    want = brute_force_maxsim(q, [docs[r].astype(np.float32) for r in rows], True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_maxsim_blocks_give_the_same_scores(random_docs, monkeypatch):
    q, docs = random_docs
    vectors, offsets = flat(docs)
    whole = maxsim_scores(q, vectors, offsets)
    monkeypatch.setattr(late_interaction, "TOKENS_PER_BLOCK", 4)  # every doc its own block
    np.testing.assert_allclose(maxsim_scores(q, vectors, offsets), whole, rtol=1e-6)


def test_maxsim_is_not_a_mean_or_a_single_max():
    q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    doc = np.array([[1.0, 0.0], [0.0, 2.0], [0.5, 0.5]], dtype=np.float16)
    got = maxsim_scores(q, doc, np.array([0, 3]), normalize=False)
    assert got.tolist() == [3.0]  # max(1, 0, .5) + max(0, 2, .5)


def test_maxsim_rejects_bad_offsets():
    vectors = np.zeros((3, 2), dtype=np.float16)
    with pytest.raises(ValueError, match="token_offsets"):
        maxsim_scores(np.ones((1, 2)), vectors, np.array([0, 2]))
    with pytest.raises(ValueError, match="non-decreasing"):
        maxsim_scores(np.ones((1, 2)), vectors, np.array([0, 2, 1, 3]))


# -- the MaxSim reranker over a tiny sentence-transformers encoder ---------------------------------

from harness.core.context import RunContext  # noqa: E402
from harness.core.errors import ModelUnavailableError  # noqa: E402
from harness.core.types import Document, ranked  # noqa: E402

CORPUS = {f"d{i}": Document(f"d{i}", f"title {i}", text) for i, text in enumerate([
    "cancer cells and protein study", "virus gene data", "the treatment effect was high",
    "dense retrieval model search", "patients with low protein", "fusion of sparse and dense",
    "query document rank results", "increased gene effect in cells"])}
QUERIES = {"q1": "protein in cancer cells", "q2": "dense search model"}


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    from tiny_models import tiny_sentence_transformer
    return str(tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "tiny-st"))


def first_stage_run():
    # A fixed first stage: every document, descending made-up scores.
    return {q: {d: float(len(CORPUS) - i) for i, d in enumerate(CORPUS)} for q in QUERIES}


def test_maxsim_rerank_scores_are_exact_maxsim(tiny_st, tmp_path):
    from sentence_transformers import SentenceTransformer

    from harness.rerankers.maxsim import MaxSimParams, MaxSimReranker
    ctx = RunContext(cache_dir=tmp_path, progress=False)
    reranker = MaxSimReranker(MaxSimParams(model=tiny_st), ctx)
    out = reranker.rerank(QUERIES, CORPUS, first_stage_run(), depth=5)

    model = SentenceTransformer(tiny_st, device="cpu")  # an independent reference encode

    def tokens(text):
        o = model.encode([text], output_value=None)[0]
        return o["token_embeddings"][:int(o["attention_mask"].sum())].float().numpy()
    head = list(CORPUS)[:5]
    for qid, text in QUERIES.items():
        want = brute_force_maxsim(tokens(text), [tokens(CORPUS[d].full_text) for d in head], True)
        np.testing.assert_allclose([out[qid][d] for d in head], want, rtol=1e-3, atol=1e-3)
        order = [d for d, _ in ranked(out[qid])]
        assert sorted(order[:5]) == sorted(head)       # the top 5 are re-ordered among themselves
        assert order[5:] == list(CORPUS)[5:]           # below the depth: original order
    assert reranker.stats["pairs"] == 10 and reranker.stats["depth"] == 5


def test_dense_and_maxsim_encode_each_document_once(tiny_st, tmp_path):
    """Acceptance 4: same encoder for the bi-encoder and MaxSim -> one forward pass per document,
    pooled and token embeddings cached together; a second run encodes nothing."""
    from harness.rerankers.maxsim import MaxSimParams, MaxSimReranker, shared_dense_params
    from harness.retrievers.dense import BiEncoderRetriever, DenseParams, token_encoder_key
    dense_params = DenseParams(model=tiny_st, batch_size=4)
    maxsim_params = MaxSimParams(model=tiny_st)
    # The runner puts the key of every MaxSim encoder in the context (runner.token_encoders);
    # a dense stage whose key matches keeps tokens from its one pass.
    needed = frozenset({token_encoder_key(maxsim_params)})
    assert token_encoder_key(dense_params) in needed
    assert token_encoder_key(DenseParams(model=tiny_st, normalize=False)) not in needed
    assert token_encoder_key(DenseParams(model=tiny_st, max_length=16)) not in needed

    def one_run():
        ctx = RunContext(cache_dir=tmp_path, progress=False, token_encoders=needed)
        dense = BiEncoderRetriever(dense_params, ctx)
        assert dense.need_tokens
        dense.index(CORPUS)
        first = dense.search(QUERIES, k=6)
        reranker = MaxSimReranker(maxsim_params, ctx)
        reranker.rerank(QUERIES, CORPUS, first, depth=4)
        reranker.rerank({"q1": QUERIES["q1"]}, CORPUS, {"q1": first["q1"]}, depth=4)
        return dense.forward_passes + reranker.forward_passes

    assert one_run() == len(CORPUS)
    assert one_run() == 0
    assert shared_dense_params(maxsim_params).model == tiny_st


def test_dense_forward_matches_sentence_transformers(tiny_st, tmp_path):
    """The dense encoder's own batching (sentence-transformers 5.7 `encode(output_value=None)`
    fails on batches of more than 4 texts) gives SentenceTransformer.encode's pooled and token
    embeddings, in input order, for batches of any size."""
    from sentence_transformers import SentenceTransformer

    from harness.retrievers.late_interaction import flatten_tokens
    from harness.retrievers.dense import BiEncoderRetriever, DenseParams
    dense = BiEncoderRetriever(DenseParams(model=tiny_st, batch_size=3, normalize=False),
                               RunContext(cache_dir=tmp_path, progress=False))
    model = SentenceTransformer(tiny_st, device="cpu")
    texts = [CORPUS[d].full_text for d in CORPUS] + ["a"]
    pooled, tokens = dense.forward(texts, tokens=True)
    np.testing.assert_allclose(pooled, model.encode(texts), rtol=1e-4, atol=1e-5)
    for text, got in zip(texts, tokens):
        want = model.encode([text], output_value="token_embeddings")[0].numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    vectors, offsets = flatten_tokens(tokens)
    assert vectors.dtype == np.float16 and offsets[-1] == len(vectors) == sum(map(len, tokens))


def test_maxsim_reads_the_cache_it_wrote(tiny_st, tmp_path):
    from harness.rerankers.maxsim import MaxSimParams, MaxSimReranker
    ctx = RunContext(cache_dir=tmp_path, progress=False)
    first = MaxSimReranker(MaxSimParams(model=tiny_st), ctx)
    a = first.rerank(QUERIES, CORPUS, first_stage_run(), depth=8)
    second = MaxSimReranker(MaxSimParams(model=tiny_st), ctx)
    b = second.rerank(QUERIES, CORPUS, first_stage_run(), depth=8)
    assert (first.forward_passes, second.forward_passes) == (len(CORPUS), 0)
    assert second.stats["embedding_cache_hit"] == 1.0
    for qid in QUERIES:  # float16 cache entries: identical on reload
        assert a[qid] == pytest.approx(b[qid], abs=1e-6)


def test_maxsim_setup_cost_does_not_depend_on_cache_state(tiny_st, tmp_path):
    """Defect 9 (rerank side): the set-up's build wall_s was this process's clock around
    prepare(), an encode on a cache miss and a load on a hit; it is the recorded encode cost."""
    from harness.rerankers.maxsim import MaxSimParams, MaxSimReranker
    costs = []
    for _ in range(2):
        reranker = MaxSimReranker(MaxSimParams(model=tiny_st),
                                  RunContext(cache_dir=tmp_path, progress=False))
        reranker.prepare(CORPUS)
        stats = reranker.stage_stats()
        costs.append((stats["wall_s"], stats["embedding_cache_hit"]))
    assert costs[0][0] == costs[1][0] > 0 and (costs[0][1], costs[1][1]) == (0.0, 1.0)


def test_maxsim_unknown_model_fails_fast_offline(monkeypatch):
    from harness.rerankers.maxsim import MaxSimParams, MaxSimReranker
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="colbert-ir/no-such-encoder"):
        MaxSimReranker(MaxSimParams(model="colbert-ir/no-such-encoder"), RunContext())


def test_maxsim_is_registered():
    from harness.core import registry
    import harness.rerankers.maxsim  # noqa: F401  (until the lead lists it in BUILTIN_MODULES)
    plugin = registry.get("reranker", "maxsim")
    assert plugin.params().model == "sentence-transformers/all-MiniLM-L6-v2"
