"""Small, deterministic slices of a dataset for tests and the CI smoke benchmark."""
from __future__ import annotations

import random

from harness.core.errors import HarnessError
from harness.core.types import Dataset, keep_subtopics
from harness.datasets.rules import dataset_stats, dataset_warnings


def slice_dataset(ds: Dataset, n_queries: int, n_extra_docs: int, seed: int = 0) -> Dataset:
    """`n_queries` seeded-random judged queries, every document they judge, plus `n_extra_docs`
    seeded-random other documents as distractors. Queries, qrels and corpus keep their file order.

    The name records the recipe (e.g. `scifact[q100+d400,seed0]`) and the checksums stay those of
    the source files, so name + checksums identify the slice's content for cache keys.
    """
    judged = list(ds.qrels)
    if not 0 < n_queries <= len(judged):
        raise HarnessError(f"{ds.name}: cannot slice {n_queries} queries; "
                           f"{len(judged)} judged queries in split {ds.split!r}")
    rng = random.Random(seed)
    chosen = set(rng.sample(judged, n_queries))
    qrels = {qid: dict(ds.qrels[qid]) for qid in judged if qid in chosen}
    judged_docs = {doc_id for docs in qrels.values() for doc_id in docs if doc_id in ds.corpus}
    others = [doc_id for doc_id in ds.corpus if doc_id not in judged_docs]
    if not 0 <= n_extra_docs <= len(others):
        raise HarnessError(f"{ds.name}: cannot add {n_extra_docs} extra documents; "
                           f"{len(others)} documents are not judged by the chosen queries")
    keep = judged_docs.union(rng.sample(others, n_extra_docs))
    corpus = {doc_id: doc for doc_id, doc in ds.corpus.items() if doc_id in keep}
    queries = {qid: ds.queries[qid] for qid in qrels}
    name = f"{ds.name}[q{n_queries}+d{n_extra_docs},seed{seed}]"
    stats = dataset_stats(corpus, queries, qrels)
    return Dataset(name, ds.split, corpus, queries, qrels, dict(ds.checksums),
                   dataset_warnings(stats, name, f"the {ds.split!r} qrels"), stats,
                   ds.query_metadata, keep_subtopics(ds.subtopics, set(qrels)))
