"""Lucene (pyserini) and bm25s on a tiny corpus: same documents, comparable BM25 rankings."""
import os

import pytest

from harness.core import registry
from harness.core.context import RunContext
from harness.core.types import Document

CORPUS = {
    "d1": Document("d1", "Apples", "red apples are sweet and crunchy"),
    "d2": Document("d2", "", "green tea leaves steeped in hot water"),
    "d3": Document("d3", "Wine", "red wine is made from fermented grapes"),
    "d4": Document("d4", "Pie", "an apple pie recipe with baked apples"),
    "d5": Document("d5", "", "the of and a"),  # only stopwords: matches nothing
}
QUERIES = {"q1": "apples", "q2": "red wine grapes", "q3": "tea", "q4": "unmatchedword"}


def build(name, ctx, **params):
    plugin = registry.get("retriever", name)
    retriever = plugin.factory(plugin.params(**params), ctx)
    retriever.index(CORPUS)
    return retriever


@pytest.fixture
def ctx(tmp_path):
    return RunContext(cache_dir=tmp_path / "cache", threads=1)


def test_bm25s_ranks_by_term_overlap_and_drops_zero_scores(ctx):
    run = build("bm25s", ctx).search(QUERIES, k=10)
    assert set(run["q1"]) == {"d1", "d4"}          # 'apples' stems to 'appl' in both
    assert next(iter(sorted(run["q2"], key=run["q2"].get, reverse=True))) == "d3"
    assert list(run["q3"]) == ["d2"]
    assert run["q4"] == {}                           # no zero-score filler documents
    assert all(s > 0 for docs in run.values() for s in docs.values())


def test_bm25s_k_larger_than_corpus_and_single_query(ctx):
    retriever = build("bm25s", ctx, stemmer=None, stopwords=None)
    assert len(retriever.search({"q": "red"}, k=1000)["q"]) == 2


@pytest.mark.slow
def test_lucene_bm25_indexes_searches_and_reuses_index(ctx):
    retriever = build("bm25", ctx)
    assert retriever.stats["index_cache_hit"] == 0.0
    batch = retriever.search(QUERIES, k=10)
    assert set(batch["q1"]) == {"d1", "d4"} and list(batch["q3"]) == ["d2"] and batch["q4"] == {}
    assert max(batch["q2"], key=batch["q2"].get) == "d3"
    single = retriever.search({"q2": QUERIES["q2"]}, k=10)
    assert single["q2"] == batch["q2"]               # one query alone = same as in a batch
    again = build("bm25", ctx)
    assert again.stats["index_cache_hit"] == 1.0     # the index is cached by corpus content
    # Lucene and bm25s agree on which documents match each query
    other = build("bm25s", ctx).search(QUERIES, k=10)
    assert {q: set(d) for q, d in batch.items()} == {q: set(d) for q, d in other.items()}


def test_lucene_workarounds_live_in_one_place(monkeypatch):
    """The OpenAI placeholder is set only around pyserini's import and only when absent."""
    from harness.engines import lucene
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with lucene._placeholder_openai_key():
        assert os.environ["OPENAI_API_KEY"]
    assert "OPENAI_API_KEY" not in os.environ
    monkeypatch.setenv("OPENAI_API_KEY", "user-key")
    with lucene._placeholder_openai_key():
        assert os.environ["OPENAI_API_KEY"] == "user-key"
    assert os.environ["OPENAI_API_KEY"] == "user-key"
