"""A normalised filter checked against a dataset, and the documents it allows per query.

`check` runs before any stage does work: every filtered field must be present on every
document (a filter over a field some documents lack has no honest answer for them), with values
of the type the condition compares; `same_as_query` fields must be present on every judged query.
Each error names the config field path and an example document or query.

`QueryFilter.allowed()` gives each query an `AllowedSet`: the boolean mask over the corpus (in
corpus order, the row order of every backend) and a key; queries with equal conditions share
one set, so a backend converts each distinct set once (a Lucene filter query, a faiss selector).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

import numpy as np

from harness.core.errors import ConfigError
from harness.core.hashing import stable_hash
from harness.core.types import Dataset, Qrels
from harness.filters.spec import matches, value_type


@dataclass(eq=False)
class AllowedSet:
    key: str
    mask: np.ndarray  # bool, one per corpus document, in corpus order
    cache: dict = field(default_factory=dict, repr=False)  # per backend conversions, by name

    @cached_property
    def rows(self) -> np.ndarray:
        return np.flatnonzero(self.mask).astype(np.int64)

    @property
    def size(self) -> int:
        return len(self.rows)


def _types(values) -> set:
    return {value_type(v) for v in values}


def check(spec: dict, dataset: Dataset, where: str) -> None:
    """ConfigError (naming `where`.<field>) when the filter cannot be applied to this dataset."""
    docs = dataset.corpus
    for name, condition in spec.items():
        at = f"{where}.{name}"
        (op, target), = condition.items()
        have = [d for d, doc in docs.items() if name in doc.metadata]
        if not have:
            known = sorted({k for doc in docs.values() for k in doc.metadata})
            raise ConfigError(f"{at}: unknown metadata field {name!r} in {dataset.name}; "
                              f"document fields: {', '.join(known) or 'none (no metadata)'}")
        if len(have) < len(docs):
            missing = next(d for d, doc in docs.items() if name not in doc.metadata)
            raise ConfigError(f"{at}: field {name!r} is missing on {len(docs) - len(have)} of "
                              f"{len(docs)} documents (e.g. {missing!r}); a filter needs it on "
                              f"every document")
        doc_types = _types(docs[d].metadata[name] for d in have)
        if op == "range":
            wanted = {"number"}
        elif op == "same_as_query":
            lacking = [q for q in dataset.qrels
                       if name not in dataset.query_metadata.get(q, {})]
            if lacking:
                raise ConfigError(f"{at}.same_as_query: field {name!r} is missing on "
                                  f"{len(lacking)} of {len(dataset.qrels)} judged queries "
                                  f"(e.g. {lacking[0]!r})")
            wanted = _types(dataset.query_metadata[q][name] for q in dataset.qrels)
        else:
            wanted = _types(target if op == "in" else [target])
        if not doc_types <= wanted or len(wanted) != 1:
            raise ConfigError(f"{at}.{op}: compares {' or '.join(sorted(wanted))} values but the "
                              f"documents' {name!r} values are {' and '.join(sorted(doc_types))}")


class QueryFilter:
    """A checked filter over one dataset: `allowed(qids)` -> {qid: AllowedSet}."""

    def __init__(self, spec: dict, dataset: Dataset, where: str):
        check(spec, dataset, where)
        self.spec = spec
        self.dataset = dataset
        self._columns = {name: [doc.metadata[name] for doc in dataset.corpus.values()]
                         for name in spec}
        self._sets: dict[str, AllowedSet] = {}

    def _targets(self, qid: str) -> dict[str, tuple[str, Any]]:
        meta = self.dataset.query_metadata.get(qid, {})
        return {name: (op, meta.get(name) if op == "same_as_query" else target)
                for name, cond in self.spec.items() for op, target in cond.items()}

    def allowed_for(self, qid: str) -> AllowedSet:
        targets = self._targets(qid)
        key = stable_hash(targets)
        if key not in self._sets:
            mask = np.ones(len(self.dataset.corpus), dtype=bool)
            for name, (op, target) in targets.items():
                mask &= np.fromiter((matches(v, op, target) for v in self._columns[name]),
                                    dtype=bool, count=len(mask))
            self._sets[key] = AllowedSet(key, mask)
        return self._sets[key]

    def allowed(self, qids) -> dict[str, AllowedSet]:
        return {q: self.allowed_for(q) for q in qids}

    def relevant_removed(self, qrels: Qrels) -> dict[str, int]:
        """Per judged query, relevant (grade > 0) documents the filter excludes: they cannot be
        retrieved, so they bound every measure (the oracle ceiling)."""
        row = {d: i for i, d in enumerate(self.dataset.corpus)}
        out = {}
        for qid, docs in qrels.items():
            mask = self.allowed_for(qid).mask
            out[qid] = sum(1 for d, g in docs.items() if g > 0 and (d not in row or
                                                                     not mask[row[d]]))
        return out

    def oracle_run(self, qrels: Qrels) -> dict[str, dict[str, float]]:
        """The best run the filter permits: every allowed judged document ranked by grade."""
        row = {d: i for i, d in enumerate(self.dataset.corpus)}
        run = {}
        for qid, docs in qrels.items():
            mask = self.allowed_for(qid).mask
            run[qid] = {d: float(g) for d, g in docs.items()
                        if g > 0 and d in row and mask[row[d]]}
        return run


def by_set(allowed: Mapping[str, AllowedSet]) -> list[tuple[AllowedSet, list[str]]]:
    """Queries grouped by their allowed set, in first-seen order: one engine call per set."""
    groups: dict[str, tuple[AllowedSet, list[str]]] = {}
    for qid, s in allowed.items():
        groups.setdefault(s.key, (s, []))[1].append(qid)
    return list(groups.values())
