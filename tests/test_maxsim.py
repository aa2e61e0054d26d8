"""MaxSim: the vectorised scorer against a brute-force reference, and the MaxSim reranker."""
import numpy as np
import pytest

from harness import late_interaction
from harness.late_interaction import maxsim_scores


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
