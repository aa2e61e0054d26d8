"""Exact late-interaction (ColBERT MaxSim) scores over per-token embeddings.

score(q, D) = sum over query tokens i of max over document tokens j of q_i . d_j

Documents are stored flat, as the embedding cache keeps them: `token_vectors` (total_tokens, d)
holds every document's tokens one after another and `token_offsets` (n_docs + 1) marks where each
starts, so document r is `token_vectors[token_offsets[r]:token_offsets[r + 1]]`.
"""
from __future__ import annotations

import numpy as np

# Document tokens scored per matrix product; bounds memory at (query tokens x this) floats.
TOKENS_PER_BLOCK = 1 << 16


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), float32."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def check_offsets(token_offsets: np.ndarray, total_tokens: int) -> None:
    offsets = np.asarray(token_offsets)
    if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != total_tokens:
        raise ValueError(f"token_offsets must run from 0 to {total_tokens} (the token count)")
    if np.any(np.diff(offsets) < 0):
        raise ValueError("token_offsets must be non-decreasing")


def inverse_norms(token_vectors: np.ndarray, chunk: int = TOKENS_PER_BLOCK) -> np.ndarray:
    """1 / |v| per token vector (0 for a zero vector), float32; computed once per corpus, it saves
    normalising the candidates' tokens on every query."""
    out = np.empty(len(token_vectors), dtype=np.float32)
    for start in range(0, len(token_vectors), chunk):
        block = np.asarray(token_vectors[start:start + chunk], dtype=np.float32)
        norms = np.linalg.norm(block, axis=1)
        out[start:start + chunk] = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0)
    return out


def maxsim_scores(query_tokens: np.ndarray, token_vectors: np.ndarray, token_offsets: np.ndarray,
                  rows: np.ndarray | None = None, normalize: bool = True,
                  token_inverse_norms: np.ndarray | None = None) -> np.ndarray:
    """MaxSim of one query (m, d) against the documents `rows` (default: all), float64 (len(rows),).

    With `normalize`, query and document token vectors are L2-normalised first (as ColBERT does),
    so each term is a cosine; pass `inverse_norms(token_vectors)` to reuse the document side.
    A document without tokens scores 0 (it matches nothing).
    """
    check_offsets(token_offsets, len(token_vectors))
    q = l2_normalize(query_tokens) if normalize else np.asarray(query_tokens, dtype=np.float32)
    if rows is None:
        rows = np.arange(len(token_offsets) - 1)
    rows = np.asarray(rows, dtype=np.int64)
    scores = np.zeros(len(rows), dtype=np.float64)
    if len(rows) == 0 or len(q) == 0:
        return scores
    starts, ends = token_offsets[rows], token_offsets[rows + 1]
    lengths = ends - starts
    # Gather the candidates' tokens into one contiguous block, then score block by block.
    block_start = 0
    while block_start < len(rows):
        block_end = block_start + 1
        size = lengths[block_start]
        while block_end < len(rows) and size + lengths[block_end] <= TOKENS_PER_BLOCK:
            size += lengths[block_end]
            block_end += 1
        _score_block(q, token_vectors, starts[block_start:block_end], lengths[block_start:block_end],
                     normalize, token_inverse_norms, scores[block_start:block_end])
        block_start = block_end
    return scores


def _score_block(q: np.ndarray, token_vectors: np.ndarray, starts: np.ndarray,
                 lengths: np.ndarray, normalize: bool, inv_norms: np.ndarray | None,
                 out: np.ndarray) -> None:
    nonempty = lengths > 0
    if not nonempty.any():
        return
    starts, lengths = starts[nonempty], lengths[nonempty]
    index = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)])
    tokens = token_vectors[index].astype(np.float32)
    sims = q @ tokens.T  # (m, block tokens)
    if normalize:  # scaling the columns = normalising the document tokens, at a fraction of the cost
        sims *= inv_norms[index] if inv_norms is not None else inverse_norms(tokens)
    # Max over each document's segment of columns, then sum over the query tokens.
    seg_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    per_doc_max = np.maximum.reduceat(sims, seg_starts, axis=1)  # (m, docs)
    out[nonempty] = per_doc_max.sum(axis=0, dtype=np.float64)


def flatten_tokens(tokens: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-document token matrices to the cached layout: (token_vectors float16, token_offsets)."""
    offsets = np.zeros(len(tokens) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t) for t in tokens])
    dim = tokens[0].shape[1] if tokens else 0
    vectors = np.concatenate(tokens) if tokens else np.zeros((0, dim))
    return vectors.astype(np.float16), offsets
