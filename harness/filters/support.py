"""Which first stages apply a filter, and how: each declares `FILTER_MODE` on its class.

- "pre": the engine searches only allowed documents (Lucene filter clause, bm25s weight mask,
  exact search over the subset, faiss IDSelector, hnswlib filter function, pgvector's SQL WHERE
  with iterative index scans, LanceDB's prefilter);
- "post": the engine searches everything and the harness drops what the filter excludes
  (Annoy, oversampled: it can return fewer than k and miss allowed neighbours);
- "index": an embedding retriever, whose ANN backend (`index.type`) declares the mode.
A stage without it is refused before any work, naming the field.
"""
from __future__ import annotations

from harness.core import registry
from harness.core.errors import ConfigError

PRE, POST = "pre", "post"


def filter_mode(spec, where: str) -> str:
    """"pre" or "post" for a retriever StageSpec (an ANN sweep point), or a ConfigError."""
    cls = registry.get("retriever", spec.type).factory
    mode = getattr(cls, "FILTER_MODE", None)
    what = f"retriever {spec.type!r}"
    if mode == "index":
        index = spec.plugin_params().get("index") or {}
        backend = index.get("type", "flat") if isinstance(index, dict) else "flat"
        mode = getattr(registry.get("ann", backend).factory, "FILTER_MODE", None)
        what = f"ann backend {backend!r}"
    if mode not in (PRE, POST):
        raise ConfigError(f"{where}: {what} does not support metadata filters; filterable: "
                          f"bm25, bm25s, dense/dpr with index flat, ivf, hnsw, pgvector, lancedb "
                          f"(pre-filter) or annoy (post-filter)")
    return mode
