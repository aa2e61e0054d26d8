"""Diversity measures beside the qrels ones.

- `ILS@k` (intra-list similarity): the mean pairwise cosine of a query's top k documents, from
  an encoder's cached document embeddings (docs/filters.md); lower = more diverse; needs no
  qrels. A query with fewer than 2 results has no pairs: it gets no value and the mean runs over
  the queries that have one (their count is recorded).
- `alpha_nDCG@k` (Clarke et al. 2008) through ir_measures' pyndeval provider, over qrels with a
  `subtopic` column: each (query, doc, subtopic) row becomes an ir_measures Qrel whose
  `iteration` is the subtopic, as ndeval reads it. Plain qrels are refused: ir_measures would
  silently read their iteration as one subtopic "0", and alpha-nDCG would be a relabelled nDCG.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import numpy as np

from harness.core.errors import ConfigError, DataError
from harness.core.types import Run, ranked

ILS_PREFIX = "ILS@"
ALPHA_PREFIX = "alpha_nDCG"
INSTALL_HINT = "pip install 'retrieval-harness[diversity]' (pyndeval)"


def is_alpha(measure) -> bool:
    return str(measure).startswith(ALPHA_PREFIX)


def check_alpha(measures, subtopics: Optional[list], where: str) -> None:
    """Refuse alpha-nDCG before any work when the qrels carry no subtopics or pyndeval is
    missing."""
    asked = [str(m) for m in measures if is_alpha(m)]
    if not asked:
        return
    import importlib.util
    if importlib.util.find_spec("pyndeval") is None:
        raise ConfigError(f"measures: {asked[0]} needs pyndeval: {INSTALL_HINT}")
    if subtopics is None:
        raise DataError(f"{where}: {asked[0]} needs qrels with a subtopic column (header "
                        "`query-id corpus-id score subtopic`); these qrels have none")


def alpha_per_query(measures, subtopics: list, run: Run) -> dict[str, dict[str, float]]:
    """{measure: {qid: value}} for the alpha-nDCG measures, ndeval semantics."""
    import ir_measures
    qrels = [ir_measures.Qrel(q, d, g, s) for q, d, s, g in subtopics]
    out: dict[str, dict[str, float]] = {str(m): {} for m in measures}
    if run:
        for metric in ir_measures.iter_calc(list(measures), qrels, run):
            out[str(metric.measure)][metric.query_id] = float(metric.value)
    return out


def ils(run: Run, vectors: np.ndarray, rows: Mapping[str, int], k: int) -> dict[str, float]:
    """Per query with at least 2 results: mean cosine over the pairs of its top k (trec_eval
    order). `vectors` are unit length, `rows` maps doc ids to their rows."""
    out = {}
    for qid, docs in run.items():
        top = [rows[d] for d, _ in ranked(docs)[:k]]
        if len(top) < 2:
            continue
        V = np.asarray(vectors[top], dtype=np.float64)
        sims = V @ V.T
        n = len(top)
        out[qid] = float((sims.sum() - np.trace(sims)) / (n * (n - 1)))
    return out


def ils_cutoffs(measures: Sequence[str]) -> list[int]:
    return [int(m[len(ILS_PREFIX):]) for m in measures]


def mean(values: Mapping[str, float]) -> float:
    return math.fsum(values.values()) / len(values) if values else math.nan
