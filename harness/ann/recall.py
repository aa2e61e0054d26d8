"""ANN fidelity: recall@k against exact neighbours, tolerant to ties, and result sanity flags."""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

IdRows = Union[np.ndarray, Sequence[Sequence[int]]]


def exact_neighbours(X: np.ndarray, Q: np.ndarray, k: int,
                     chunk: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product: (ids int64, scores float32), shaped (nq, k), best first.

    X is scanned in row chunks, so a memory-mapped corpus is never loaded whole. Rows beyond
    the corpus size are padded with id -1 and score -inf.
    """
    Q = np.asarray(Q, dtype=np.float32)
    n = X.shape[0]
    keep = min(k, n)
    best_scores = np.empty((len(Q), 0), dtype=np.float32)
    best_ids = np.empty((len(Q), 0), dtype=np.int64)
    for start in range(0, n, chunk):
        block = np.asarray(X[start:start + chunk], dtype=np.float32)
        scores = np.concatenate([best_scores, Q @ block.T], axis=1)
        block_ids = np.arange(start, start + len(block), dtype=np.int64)
        ids = np.concatenate([best_ids, np.broadcast_to(block_ids, (len(Q), len(block)))], axis=1)
        top = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_ids = np.take_along_axis(ids, top, axis=1)
    order = np.lexsort((best_ids, -best_scores), axis=1)  # score descending, then id ascending
    best_ids = np.take_along_axis(best_ids, order, axis=1)
    best_scores = np.take_along_axis(best_scores, order, axis=1)
    pad = k - keep
    return (np.pad(best_ids, ((0, 0), (0, pad)), constant_values=-1),
            np.pad(best_scores, ((0, 0), (0, pad)), constant_values=-np.inf))


def filtered_exact_neighbours(X: np.ndarray, Q: np.ndarray, k: int,
                              allowed_rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """`exact_neighbours` with each query restricted to its own allowed rows of X (queries
    sharing one rows array are searched together); ids are rows of X, -1 padded past the
    allowed count."""
    Q = np.asarray(Q, dtype=np.float32)
    ids = np.full((len(Q), k), -1, dtype=np.int64)
    scores = np.full((len(Q), k), -np.inf, dtype=np.float32)
    groups: dict[int, tuple[np.ndarray, list[int]]] = {}
    for i, rows in enumerate(allowed_rows):
        groups.setdefault(id(rows), (rows, []))[1].append(i)
    for rows, members in groups.values():
        if not len(rows):
            continue
        local_ids, local_scores = exact_neighbours(np.asarray(X[rows]), Q[members], k)
        ids[members] = np.where(local_ids >= 0, rows[np.maximum(local_ids, 0)], -1)
        scores[members] = local_scores
    return ids, scores


def ann_recall(ids: np.ndarray, X: np.ndarray, Q: np.ndarray, exact_ids: np.ndarray,
               exact_scores: np.ndarray, k: int, eps: float = 1e-4) -> np.ndarray:
    """Per-query recall@k of `ids` (nq, >=k) against the exact top-k, distance-tolerant.

    A returned neighbour is a hit when it is among the exact top-k ids or when its exact
    inner product with the query is at least the k-th exact score minus `eps` (so a neighbour
    tied with the k-th one counts, as in ann-benchmarks). Repeated ids and -1 padding count
    once / never. Similarities are recomputed from X and Q, not taken from the backend, whose
    scores may be approximate (PQ).
    """
    ids = np.asarray(ids)[:, :k]
    threshold = exact_scores[:, k - 1] - eps
    recall = np.empty(len(ids), dtype=np.float64)
    for row, found in enumerate(ids):
        found = np.unique(found[found >= 0])
        truth = exact_ids[row, :k]
        n_true = int((truth >= 0).sum())  # fewer than k when the corpus is smaller than k
        if n_true == 0:
            recall[row] = 1.0
            continue
        sims = np.asarray(X[found], dtype=np.float32) @ np.asarray(Q[row], dtype=np.float32)
        hits = np.isin(found, truth) | (sims >= threshold[row])
        recall[row] = min(int(hits.sum()), n_true) / n_true
    return recall


def result_flags(ids: IdRows, k: int) -> dict[str, int]:
    """How many queries got fewer than k results, more than k, or a repeated id (-1 is padding)."""
    flags = {"short": 0, "too_many": 0, "duplicates": 0}
    for row in ids:
        found = np.asarray(row)
        found = found[found >= 0]
        flags["short"] += int(len(found) < k)
        flags["too_many"] += int(len(found) > k)
        flags["duplicates"] += int(len(np.unique(found)) < len(found))
    return flags
