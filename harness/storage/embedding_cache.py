"""On-disk cache of embeddings keyed by a content hash of everything that produced them.

Each entry is `<key>.npz` plus `<key>.json` holding the file's sha256 and what computing the
arrays cost (wall time, peak memory rise), measured when they were computed: a cache hit reports
the same cost as the miss that wrote the entry. An entry whose bytes do not match is discarded
with a warning and recomputed, so a truncated or corrupt file is never used.
"""
from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np

from harness.storage.atomic import atomic_path, write_json
from harness.core.context import Memo
from harness.evaluation.timing import PeakRSSDelta, time_call
from harness.core.hashing import sha256_file

log = logging.getLogger(__name__)
Arrays = Dict[str, np.ndarray]
MEMO_SLOT = "embedding_cache"


@dataclass(frozen=True)
class Entry:
    arrays: Arrays
    # {"wall_s", "peak_rss_delta_bytes"} of the compute() that produced the arrays; None (or
    # empty) for an entry written before costs were recorded: get_or_compute recomputes it.
    cost: Optional[dict]
    hit: bool = False  # served from the cache (disk or the run's memo), not computed by this call


class EmbeddingCache:
    def __init__(self, root: Path, memo: Optional[Memo] = None):
        """`memo`: the run's in-memory memo (RunContext.memo); the entry used last stays there, so
        consecutive stages over one corpus (the points of an ANN sweep) neither re-read nor
        re-verify it."""
        self.root = Path(root) / "embeddings"
        self.memo = memo
        self.hits = 0
        self.misses = 0

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.npz", self.root / f"{key}.json"

    def load(self, key: str) -> Entry | None:
        data_path, meta_path = self._paths(key)
        if not (data_path.exists() and meta_path.exists()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if sha256_file(data_path) != meta["sha256"]:
                raise ValueError("checksum mismatch")
            with np.load(data_path) as npz:
                return Entry({name: npz[name] for name in npz.files}, meta.get("cost"), hit=True)
        except Exception as exc:  # corrupt entry: discard and recompute
            warnings.warn(f"discarding corrupt embedding cache entry {data_path.name}: {exc}")
            data_path.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            return None

    def save(self, key: str, arrays: Arrays, description: dict, cost: dict) -> None:
        data_path, meta_path = self._paths(key)
        with atomic_path(data_path) as tmp:
            with open(tmp, "wb") as fh:  # a file object keeps numpy from appending '.npz'
                np.savez(fh, **arrays)
        # The sidecar is written last: an entry without it is incomplete and ignored.
        write_json(meta_path, {"sha256": sha256_file(data_path), "description": description,
                               "shapes": {k: list(v.shape) for k, v in arrays.items()},
                               "cost": cost})

    def get_or_compute(self, key: str, compute: Callable[[], Arrays], description: dict,
                       required: tuple[str, ...] = ()) -> Entry:
        """The cached entry if it holds every `required` array and its recorded cost, else
        `compute()`, timed and saved with its cost."""
        memo_key = (str(self.root), key)
        entry = (self.memo.get(MEMO_SLOT, memo_key) if self.memo else None) or self.load(key)
        what = description.get("what", "")
        if entry is not None and entry.cost and all(n in entry.arrays for n in required):
            self.hits += 1
            log.info("embedding cache hit: %s (%s)", key[:12], what)
        else:
            self.misses += 1
            why = "" if entry is None else (" (entry lacks a required array)" if entry.cost
                                            else " (entry without a recorded cost)")
            log.info("embedding cache miss: %s (%s)%s: encoding", key[:12], what, why)
            with PeakRSSDelta() as rss:
                arrays, seconds = time_call(compute)
            cost = {"wall_s": seconds, "peak_rss_delta_bytes": rss.delta_bytes}
            self.save(key, arrays, description, cost)
            entry = Entry(arrays, cost)
        if self.memo is not None:
            self.memo.put(MEMO_SLOT, memo_key, Entry(entry.arrays, entry.cost, hit=True))
        return entry
