"""Retrieval measures with trec_eval semantics, computed by ir_measures.

Three rules make every measure mean what trec_eval (`-c`) means:
- one ranking rule for every provider (see `canonicalize`);
- the mean runs over every query in the qrels; a judged query without results scores 0;
- queries in the run that have no judgments are ignored, with a warning.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import ir_measures

from harness.core.errors import ConfigError, DataError
from harness.core.types import Qrels, Run, ranked

EXAMPLE_MEASURES = "nDCG@10, RR@10, R@100, AP@100, P@10, AP"


def parse_measures(strings: Iterable[str]) -> list:
    """ir_measures measures for the given strings, in order, without duplicates.

    A measure that does not parse, or that no installed provider can compute, is a ConfigError.
    """
    measures = []
    for text in strings:
        try:
            measure = ir_measures.parse_measure(text.strip())
            # Building an evaluator is the only way to learn whether a provider supports the
            # measure's parameters; ir_measures reports that with several exception types.
            ir_measures.DefaultPipeline.evaluator([measure], {"q": {"d": 1}})
        except Exception as exc:  # noqa: BLE001 - every failure here means "bad measure string"
            from harness.evaluation.diversity import ALPHA_PREFIX, INSTALL_HINT
            hint = (f" alpha-nDCG needs pyndeval: {INSTALL_HINT}."
                    if text.strip().startswith(ALPHA_PREFIX) else "")
            raise ConfigError(f"invalid measure {text!r}: {exc}.{hint} "
                              f"Valid examples: {EXAMPLE_MEASURES}") from None
        if measure not in measures:
            measures.append(measure)
    if not measures:
        raise ConfigError(f"no measures given. Valid examples: {EXAMPLE_MEASURES}")
    return measures


def validate_run(run: Run, source: str) -> None:
    """Reject NaN/inf scores, naming their source (a pipeline or a stage) and the query, before
    anything is evaluated or built on them."""
    for qid, docs in run.items():
        for doc_id, score in docs.items():
            if not math.isfinite(score):
                raise DataError(f"{source}, query {qid!r}: doc {doc_id!r} has score "
                                f"{score!r}; scores must be finite")


def canonicalize(run: Run) -> Run:
    """The same rankings with ties resolved: trec_eval order, scores replaced by n, n-1, ..., 1.

    trec_eval orders by score descending, then doc id descending (strcmp). ir_measures hands each
    measure to a provider that sorts on its own: pytrec_eval (nDCG, AP, P, R) follows trec_eval,
    but msmarco (RR@k) breaks ties by doc id ascending. On tied scores the providers would then
    rank the same run differently. Strictly decreasing scores leave nothing to break, so every
    provider sees trec_eval's ranking.
    """
    canonical: Run = {}
    for qid, docs in run.items():
        order = ranked(docs)
        canonical[qid] = {doc_id: float(len(order) - i) for i, (doc_id, _) in enumerate(order)}
    return canonical


@dataclass
class Evaluation:
    """Measure keys are ir_measures' spelling of each measure (`str(measure)`), in the order asked."""

    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]]
    queries_without_results: int  # judged queries with no results; they score 0 everywhere
    unjudged_queries: list[str] = field(default_factory=list)  # in the run, not in qrels: ignored


def evaluate(qrels: Qrels, run: Run, measures: Sequence,
             subtopics: Optional[list] = None) -> Evaluation:
    """Per-query values and their means over every judged query (trec_eval -c); nothing rounded.
    alpha-nDCG measures are computed on `subtopics` (harness.evaluation.diversity)."""
    from harness.evaluation.diversity import alpha_per_query, check_alpha, is_alpha
    check_alpha(measures, subtopics, "evaluate")
    if not qrels:
        raise DataError("the qrels are empty: there is nothing to average over")
    keys = [str(m) for m in measures]
    unjudged = [qid for qid in run if qid not in qrels]
    if unjudged:
        shown = ", ".join(map(repr, unjudged[:5])) + (", ..." if len(unjudged) > 5 else "")
        warnings.warn(f"{len(unjudged)} run queries have no judgments and are ignored: {shown}",
                      stacklevel=2)
    judged_run = {qid: docs for qid, docs in canonicalize(run).items() if qid in qrels and docs}

    # Start every judged query at 0 so that queries without results count (trec_eval -c).
    per_query = {key: dict.fromkeys(qrels, 0.0) for key in keys}
    plain = [m for m in measures if not is_alpha(m)]
    if judged_run and plain:
        for metric in ir_measures.iter_calc(plain, qrels, judged_run):
            per_query[str(metric.measure)][metric.query_id] = float(metric.value)
    if len(plain) < len(measures):
        alpha = alpha_per_query([m for m in measures if is_alpha(m)], subtopics, judged_run)
        for key, values in alpha.items():
            per_query[key].update({q: v for q, v in values.items() if q in qrels})
    aggregate = {key: math.fsum(values.values()) / len(values) for key, values in per_query.items()}
    return Evaluation(aggregate, per_query, len(qrels) - len(judged_run), unjudged)
