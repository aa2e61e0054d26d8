"""Serialised size of a faiss index, counted while streaming so no copy of the index is held."""
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
