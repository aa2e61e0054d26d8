"""Training examples from a dataset's train split: the leakage guard, the content key, and
hard negatives mined by BM25 or by the base model.

The guard runs before any work: training on the evaluated split, on a query the evaluated qrels
judge, or on a training query whose id is a judged document of the evaluated qrels (datasets
where documents double as queries) is refused, naming the overlap.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
import numpy as np

from harness.config import Config
from harness.core.context import RunContext
from harness.core.errors import ConfigError
from harness.core.hashing import stable_hash
from harness.core.types import Dataset
from harness.training.spec import TrainSpec

log = logging.getLogger(__name__)


@dataclass
class Examples:
    """Training queries with their positives and (when mined) hard negatives, all as texts."""

    qids: list[str]
    queries: list[str]
    positives: list[str]              # one per example: a query with two positives is two
    negatives: list[list[str]]        # per example, possibly empty
    key: str                          # content hash of what was selected (not of the mining)


def source(name: str, spec: TrainSpec, config: Config) -> tuple[str, str]:
    dataset = spec.data.name or config.dataset.name
    if dataset is None:
        raise ConfigError(f"train.{name}.data.name: the config's dataset is an ir_datasets id; "
                          "name the training dataset (a bundled name or folder)")
    return dataset, spec.data.split


def load(name: str, spec: TrainSpec, config: Config) -> Dataset:
    from harness.datasets import load_dataset
    dataset, split = source(name, spec, config)
    return load_dataset(dataset, split)


def check_leakage(name: str, spec: TrainSpec, config: Config, train: Dataset,
                  evaluated: Dataset) -> None:
    """Refuse training data that overlaps the evaluated queries (see the module docstring)."""
    dataset, split = source(name, spec, config)
    if config.dataset.name == dataset and config.dataset.split == split:
        raise ConfigError(f"train.{name}.data: trains on {dataset}/{split}, the split this config "
                          "evaluates; train on another split (e.g. train)")
    overlaps = [("queries judged in the evaluated qrels", sorted(set(train.qrels) & set(evaluated.qrels))),
                ("ids of documents judged in the evaluated qrels",
                 sorted(set(train.qrels) & {d for docs in evaluated.qrels.values() for d in docs}))]
    for what, ids in overlaps:
        if ids:
            raise ConfigError(f"train.{name}.data: {len(ids)} training queries of {dataset}/{split} "
                              f"are {what} ({evaluated.name}/{evaluated.split}), e.g. "
                              f"{', '.join(ids[:5])}: training on them would leak the test set")


def select(spec: TrainSpec, train: Dataset) -> list[tuple[str, str]]:
    """(qid, positive doc id) pairs, queries in a seeded order, capped at `max_queries`."""
    qids = sorted(q for q, docs in train.qrels.items()
                  if q in train.queries and any(g > 0 and d in train.corpus for d, g in docs.items()))
    order = np.random.default_rng(spec.seed).permutation(len(qids))
    qids = [qids[i] for i in order][:spec.max_queries]
    return [(q, d) for q in qids for d, g in sorted(train.qrels[q].items())
            if g > 0 and d in train.corpus]


def data_key(spec: TrainSpec, train: Dataset) -> str:
    """What the examples are made of: the split's files and the pairs selected. Mining is a
    deterministic function of these, the base model and the spec, all in the training key."""
    return stable_hash({"checksums": train.checksums, "split": train.split,
                        "pairs": select(spec, train)})


def _miner_rankings(spec: TrainSpec, train: Dataset, qids: list[str],
                    ctx: RunContext) -> dict[str, list[str]]:
    """Each training query's top `negatives_depth` documents by the miner."""
    from harness.core import registry
    if spec.negatives == "bm25":
        entry = registry.get("retriever", "bm25s")
        retriever = entry.factory(entry.params(), ctx)
    else:  # the base model as a bi-encoder, through the dense retriever and its embedding cache
        from harness.retrievers.dense import BiEncoderRetriever, DenseParams
        retriever = BiEncoderRetriever(DenseParams(model=spec.base), ctx)
    retriever.index(train.corpus)
    run = retriever.search({q: train.queries[q] for q in qids}, spec.negatives_depth)
    from harness.core.types import ranked
    return {q: [d for d, _ in ranked(run.get(q, {}))] for q in qids}


def _relevant(train: Dataset, qid: str) -> set[str]:
    return {d for d, g in train.qrels[qid].items() if g > 0}


def examples(spec: TrainSpec, train: Dataset, ctx: RunContext) -> Examples:
    pairs = select(spec, train)
    if not pairs:
        raise ConfigError(f"training split {train.name}/{train.split} has no judged query with a "
                          "relevant document in the corpus")
    qids = list(dict.fromkeys(q for q, _ in pairs))
    negatives: list[list[str]] = [[] for _ in pairs]
    rng = np.random.default_rng(spec.seed)
    if spec.negatives != "none":
        log.info("mining hard negatives with %s for %d training queries", spec.negatives, len(qids))
        ranking = _miner_rankings(spec, train, qids, ctx)
        for i, (q, _) in enumerate(pairs):
            relevant = _relevant(train, q)
            pool = [d for d in ranking[q][spec.negatives_skip:] if d not in relevant]
            # A seeded sample from the pool, kept in rank order: the very top is where unjudged
            # relevant answers (near-duplicate FAQ entries) sit, so it is not always taken.
            picked = sorted(rng.choice(len(pool), min(spec.num_negatives, len(pool)),
                                       replace=False)) if pool else []
            negatives[i] = [pool[j] for j in picked]
    if spec.random_negatives:
        doc_ids = sorted(train.corpus)
        for i, (q, _) in enumerate(pairs):
            taken = _relevant(train, q) | set(negatives[i])
            wanted = len(negatives[i]) + min(spec.random_negatives, len(doc_ids) - len(taken))
            while len(negatives[i]) < wanted:
                d = doc_ids[int(rng.integers(len(doc_ids)))]
                if d not in taken:
                    taken.add(d)
                    negatives[i].append(d)
    return Examples(qids=[q for q, _ in pairs], queries=[train.queries[q] for q, _ in pairs],
                    positives=[train.corpus[d].full_text for _, d in pairs],
                    negatives=[[train.corpus[d].full_text for d in n] for n in negatives],
                    key=data_key(spec, train))

