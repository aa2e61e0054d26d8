"""Contract checks every plugin must pass: used by the harness's own tests (parametrised over the
whole registry) and available to third-party plugin authors.

- parameters: unknown ones are refused; every parameter is keyed (changing it changes
  `Params.resolved()`, hence the node key) and writing a default explicitly changes nothing;
- results: at most k results per query, finite scores, ids from the corpus, padding only as -1
  (ANN backends) and never leaked as a document.
"""
from __future__ import annotations

import math
import typing
from typing import Any, Iterator, Mapping

import numpy as np
from pydantic import ValidationError

from harness.core.registry import Params, Plugin
from harness.core.types import Run

_CANDIDATES: tuple[Any, ...] = (7, 0.5, "x", True, [1, 2], 3)


def _alternatives(annotation, default) -> list[Any]:
    """Values worth trying instead of `default` for a field of this type (validated later)."""
    if isinstance(default, bool):
        return [not default]
    if isinstance(default, int):
        return [default + 1, default - 1]
    if isinstance(default, float):
        return [default + 0.25, default / 2, default + 1.0]
    choices = typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()
    if choices:
        return [c for c in choices if c != default]
    if isinstance(default, str):
        return [default + "x", ""]
    return list(_CANDIDATES)


def mutations(params_cls: type[Params], base: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(field, value): for each field (model fields excepted: their fingerprint is keyed instead),
    the first alternative value that validates. A field with no valid alternative is skipped."""
    defaults = params_cls(**base)
    for name, info in params_cls.model_fields.items():
        if name in params_cls.MODEL_FIELDS:
            continue
        current = getattr(defaults, name)
        if isinstance(current, Params):
            continue  # nested settings have their own plugin's contract (e.g. ANN backends)
        for value in _alternatives(info.annotation, current):
            try:
                params_cls(**{**base, name: value})
            except (ValidationError, ValueError, TypeError):
                continue
            yield name, value
            break


def check_params_contract(plugin: Plugin, base: Mapping[str, Any]) -> list[str]:
    """Parameter contract of `plugin` with the required settings `base`; returns the fields that
    were checked (raises AssertionError on a violation)."""
    cls = plugin.params
    try:
        cls(**base, zz_not_a_parameter=1)
    except ValidationError:
        pass
    else:
        raise AssertionError(f"{plugin.kind} {plugin.name}: an unknown parameter was accepted")
    reference = cls(**base).resolved()
    explicit = cls(**{**cls(**base).model_dump(), **base}).resolved()
    assert explicit == reference, f"{plugin.kind} {plugin.name}: explicit defaults change the key"
    checked = []
    for name, value in mutations(cls, base):
        changed = cls(**{**base, name: value}).resolved()
        assert changed != reference, (f"{plugin.kind} {plugin.name}: parameter {name!r} = "
                                      f"{value!r} does not change the key")
        checked.append(name)
    return checked


def check_run(run: Run, k: int, corpus_ids, queries, what: str) -> None:
    """A run answers only the given queries, with at most k results each, from the corpus, with
    finite scores."""
    assert set(run) <= set(queries), f"{what}: answered unknown queries {set(run) - set(queries)}"
    for qid, docs in run.items():
        assert len(docs) <= k, f"{what}: query {qid!r} got {len(docs)} results > k={k}"
        unknown = set(docs) - set(corpus_ids)
        assert not unknown, f"{what}: query {qid!r} got ids not in the corpus: {sorted(unknown)[:3]}"
        bad = [s for s in docs.values() if not math.isfinite(s)]
        assert not bad, f"{what}: query {qid!r} got non-finite scores {bad[:3]}"


def check_ann_search(index, X: np.ndarray, Q: np.ndarray, k: int, what: str) -> None:
    """(ids, scores) shaped (nq, k); ids are rows of X, each once per row with a finite score,
    then -1 padding (short rows are legitimate for some backends and are flagged, not refused)."""
    ids, scores = index.search(Q, k)
    ids, scores = np.asarray(ids), np.asarray(scores)
    assert ids.shape == (len(Q), k) and scores.shape == (len(Q), k), \
        f"{what}: shapes {ids.shape}, {scores.shape} != {(len(Q), k)}"
    for row_ids, row_scores in zip(ids, scores):
        real = row_ids[row_ids >= 0]
        assert ((row_ids >= -1) & (row_ids < len(X))).all(), f"{what}: ids out of range {row_ids}"
        assert len(real) == len(set(real.tolist())), f"{what}: repeated ids {row_ids}"
        assert np.isfinite(row_scores[row_ids >= 0]).all(), f"{what}: non-finite scores"
        assert (row_ids[len(real):] == -1).all(), f"{what}: padding is not at the end"


def clustered_unit_vectors(seed: int, n: int, d: int, clusters: int, n_queries: int
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Small ANN test data: (X, Q), n unit vectors around `clusters` random centres and n_queries
    unit queries near the first corpus points (so every query has close neighbours)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    X = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, d))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    Q = X[:n_queries] + 0.2 * rng.standard_normal((n_queries, d)).astype(np.float32)
    Q = np.ascontiguousarray(Q / np.linalg.norm(Q, axis=1, keepdims=True), dtype=np.float32)
    return X, Q
