"""Serialised size of a faiss index, counted while streaming so no copy of the index is held;
the ID selector that filters a faiss search."""
from __future__ import annotations


def faiss_nbytes(index) -> int:
    import faiss

    total = 0

    def count(chunk: bytes) -> int:
        nonlocal total
        total += len(chunk)
        return len(chunk)

    faiss.write_index(index, faiss.PyCallbackIOWriter(count))
    return total


def faiss_selector(allowed):
    """A faiss IDSelector over an AllowedSet's rows, built once per set (faiss checks it while
    scanning: a pre-filter)."""
    import faiss
    if "faiss" not in allowed.cache:
        allowed.cache["faiss"] = faiss.IDSelectorBatch(allowed.rows)
    return allowed.cache["faiss"]
