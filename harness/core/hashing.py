"""Content hashes: the keys of every cache and the provenance recorded with every result."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def stable_hash(obj) -> str:
    """sha256 of a JSON-serialisable object in canonical form (sorted keys, no whitespace)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def texts_hash(ids: Iterable[str], texts: Iterable[str]) -> str:
    """Hash of (id, text) pairs in order: two corpora share embeddings only if they are identical."""
    digest = hashlib.sha256()
    for doc_id, text in zip(ids, texts):
        for part in (doc_id, text):
            data = part.encode("utf-8")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return digest.hexdigest()
