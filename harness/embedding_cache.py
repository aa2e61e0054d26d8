"""On-disk cache of embeddings keyed by a content hash of everything that produced them.

Each entry is `<key>.npz` plus `<key>.json` holding the file's sha256; an entry whose bytes do not
match is discarded with a warning and recomputed, so a truncated or corrupt file is never used.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Callable, Dict

import numpy as np

from .atomic import atomic_path, write_json
from .hashing import sha256_file

log = logging.getLogger(__name__)
Arrays = Dict[str, np.ndarray]


class EmbeddingCache:
    _last: tuple | None = None  # ((root, key), arrays) of the entry used last in this process

    def __init__(self, root: Path):
        self.root = Path(root) / "embeddings"
        self.hits = 0
        self.misses = 0

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.npz", self.root / f"{key}.json"

    def load(self, key: str) -> Arrays | None:
        data_path, meta_path = self._paths(key)
        if not (data_path.exists() and meta_path.exists()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if sha256_file(data_path) != meta["sha256"]:
                raise ValueError("checksum mismatch")
            with np.load(data_path) as npz:
                return {name: npz[name] for name in npz.files}
        except Exception as exc:  # corrupt entry: discard and recompute
            warnings.warn(f"discarding corrupt embedding cache entry {data_path.name}: {exc}")
            data_path.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            return None

    def save(self, key: str, arrays: Arrays, description: dict) -> None:
        data_path, meta_path = self._paths(key)
        with atomic_path(data_path) as tmp:
            with open(tmp, "wb") as fh:  # a file object keeps numpy from appending '.npz'
                np.savez(fh, **arrays)
        # The sidecar is written last: an entry without it is incomplete and ignored.
        write_json(meta_path, {"sha256": sha256_file(data_path), "description": description,
                               "shapes": {k: list(v.shape) for k, v in arrays.items()}})

    def get_or_compute(self, key: str, compute: Callable[[], Arrays], description: dict,
                       required: tuple[str, ...] = ()) -> Arrays:
        """The cached arrays if the entry holds every `required` one, else `compute()` (saved).

        The last entry used stays in memory: consecutive stages over one corpus (the points of
        an ANN sweep) neither re-read nor re-verify it."""
        last = EmbeddingCache._last
        cached = last[1] if last and last[0] == (self.root, key) else self.load(key)
        if cached is not None and all(name in cached for name in required):
            self.hits += 1
            log.info("embedding cache hit: %s (%s)", key[:12], description.get("what", ""))
            EmbeddingCache._last = ((self.root, key), cached)
            return cached
        self.misses += 1
        log.info("embedding cache miss: %s (%s): encoding", key[:12], description.get("what", ""))
        arrays = compute()
        self.save(key, arrays, description)
        EmbeddingCache._last = ((self.root, key), arrays)
        return arrays
