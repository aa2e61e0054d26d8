"""`bm25s`: embedded BM25 (bm25s + PyStemmer), fast enough to sweep k1/b in seconds."""
from __future__ import annotations

from typing import Literal, Mapping, Optional

import numpy as np
from pydantic import Field

from harness.core.context import RunContext
from harness.core.registry import DETERMINISTIC, Params, register
from harness.core.types import Document, Run


class BM25sParams(Params):
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"
    k1: float = Field(0.9, ge=0)
    b: float = Field(0.4, ge=0, le=1)
    stemmer: Optional[str] = Field("english", description="a PyStemmer language, or null")
    stopwords: Optional[str] = Field("en", description="a bm25s stopword list name, or null")


@register("retriever", "bm25s", params=BM25sParams, requires=("bm25s", "Stemmer"),
          install_hint="pip install bm25s PyStemmer", tolerance=DETERMINISTIC)
class BM25sRetriever:
    """bm25s sparse-matrix BM25 over "title text".

    Zero-score documents are not returned, as in Lucene, so recall is not inflated by
    arbitrary tail documents. Filters: bm25s's `weight_mask` zeroes excluded documents' scores
    before the top k is taken (a pre-filter), one call per distinct allowed set."""

    FILTER_MODE = "pre"

    def __init__(self, params: BM25sParams, ctx: RunContext):
        import Stemmer
        self.params = params
        self.ctx = ctx
        self.stemmer = Stemmer.Stemmer(params.stemmer) if params.stemmer else None
        self._doc_ids: list[str] = []
        self._model = None

    def _tokenize(self, texts: list[str]):
        import bm25s
        return bm25s.tokenize(texts, stopwords=self.params.stopwords, stemmer=self.stemmer,
                              show_progress=False)

    def index(self, corpus: Mapping[str, Document]) -> None:
        import bm25s
        self._doc_ids = list(corpus)
        self._model = bm25s.BM25(method=self.params.method, k1=self.params.k1, b=self.params.b)
        self._model.index(self._tokenize([corpus[d].full_text for d in self._doc_ids]),
                          show_progress=False)

    def search(self, queries: Mapping[str, str], k: int, weight_mask=None) -> Run:
        qids = list(queries)
        tokens = self._tokenize([queries[q] for q in qids])
        k = min(k, len(self._doc_ids))
        docs, scores = self._model.retrieve(tokens, k=k, show_progress=False,
                                            n_threads=self.ctx.threads if len(qids) > 1 else 1,
                                            weight_mask=weight_mask)
        run: Run = {}
        for qid, rows, vals in zip(qids, np.asarray(docs), np.asarray(scores)):
            run[qid] = {self._doc_ids[i]: float(s) for i, s in zip(rows, vals) if s > 0}
        return run

    def search_filtered(self, queries: Mapping[str, str], k: int, allowed) -> Run:
        from harness.filters.allowed import by_set
        run: Run = {}
        for subset, qids in by_set(allowed):
            mask = subset.cache.setdefault("bm25s", subset.mask.astype(np.float32))
            run.update(self.search({q: queries[q] for q in qids}, k, weight_mask=mask))
        return run
