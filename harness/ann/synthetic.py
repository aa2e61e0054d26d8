"""Seeded synthetic embeddings for scaling runs: unit vectors in clusters, cached as .npy and
memory-mapped read-only, so a 1M x 384 corpus (1.5 GB) is generated once and never held twice.

Each cluster is a unit centre plus anisotropic Gaussian noise (variance decaying over a random
basis), which gives the low intrinsic dimension real sentence embeddings have; isotropic noise
in 384 dimensions would make every neighbour almost equidistant.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.storage.atomic import atomic_path
from harness.core.context import RunContext
from harness.core.hashing import stable_hash

GENERATOR_VERSION = 1  # bump when the generation below changes: it is part of the cache key
CHUNK_ROWS = 50_000
_STREAMS = {"corpus": 1, "queries": 2}


def _shape(seed: int, d: int, n_clusters: int, spread: float, decay: float):
    rng = np.random.default_rng([seed, 0])
    centres = rng.standard_normal((n_clusters, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))  # random orthonormal directions
    scales = (np.arange(1, d + 1) ** -decay)
    scales *= spread / np.linalg.norm(scales)  # the expected noise norm is `spread`
    return centres.astype(np.float32), (basis * scales).T.astype(np.float32)


def _generate_into(out: np.ndarray, stream: int, seed: int, n_clusters: int, spread: float,
                   decay: float) -> None:
    n, d = out.shape
    centres, mixing = _shape(seed, d, n_clusters, spread, decay)
    for chunk, start in enumerate(range(0, n, CHUNK_ROWS)):
        rows = min(CHUNK_ROWS, n - start)
        rng = np.random.default_rng([seed, stream, chunk])  # each chunk reproducible on its own
        labels = rng.integers(0, n_clusters, rows)
        block = centres[labels] + rng.standard_normal((rows, d), dtype=np.float32) @ mixing
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + rows] = block


def synthetic_vectors(ctx: RunContext, n: int, kind: str = "corpus", d: int = 384,
                      n_clusters: int = 1000, spread: float = 1.0, decay: float = 0.5,
                      seed: int | None = None) -> np.ndarray:
    """A read-only memory-mapped (n, d) float32 array of unit vectors, generated on first use.

    `kind` "corpus" or "queries": both come from the same clusters, from separate random streams.
    """
    if kind not in _STREAMS:
        raise ValueError(f"kind must be one of {', '.join(_STREAMS)}, got {kind!r}")
    seed = ctx.seed if seed is None else seed
    key = stable_hash({"version": GENERATOR_VERSION, "kind": kind, "n": n, "d": d, "seed": seed,
                       "clusters": n_clusters, "spread": spread, "decay": decay,
                       "chunk": CHUNK_ROWS})
    path: Path = ctx.cache_path("synthetic", f"{kind}-n{n}-d{d}-{key[:16]}.npy")
    if not path.exists():
        with atomic_path(path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, d))
            _generate_into(out, _STREAMS[kind], seed, n_clusters, spread, decay)
            out.flush()
            del out
    return np.load(path, mmap_mode="r")
