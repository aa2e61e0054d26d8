"""What every plugin may need from the run besides its own parameters."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Optional


def default_cache_dir() -> Path:
    """Embeddings and indexes are cached here; override with HARNESS_CACHE_DIR."""
    return Path(os.environ.get("HARNESS_CACHE_DIR", Path.cwd() / ".cache" / "harness"))


class Memo:
    """What one run keeps in memory between its stages: one value per slot (the ANN index the
    last sweep point searched, the embedding-cache entry used last), replaced by the next key.

    It lives as long as the run's RunContext. A worker process gets an empty one: a pickled Memo
    unpickles empty, so a live index is never sent across processes."""

    def __init__(self) -> None:
        self._slots: dict[str, tuple[Hashable, Any]] = {}

    def get(self, slot: str, key: Hashable) -> Optional[Any]:
        held = self._slots.get(slot)
        return held[1] if held is not None and held[0] == key else None

    def put(self, slot: str, key: Hashable, value: Any) -> None:
        self._slots[slot] = (key, value)

    def __reduce__(self):
        return (Memo, ())


@dataclass
class RunContext:
    cache_dir: Path = field(default_factory=default_cache_dir)
    device: str = "cpu"          # resolved: "cpu" or "cuda[:n]", never "auto"
    threads: int = 1             # torch / faiss / engine threads, recorded in metadata
    seed: int = 0
    dataset_key: str = ""        # content hash of the dataset files: part of every cache key
    progress: bool = True
    deterministic: bool = False  # engines that depend on thread scheduling build single-threaded
    # (model, max_length, normalize, doc_prefix) of encoders whose per-token document embeddings a
    # later stage needs (MaxSim): a dense stage with that encoder keeps them from its one pass.
    token_encoders: frozenset = frozenset()
    memo: Memo = field(default_factory=Memo, compare=False, repr=False)

    def cache_path(self, *parts: str) -> Path:
        path = self.cache_dir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def resolve_device(requested: str) -> str:
    """'auto' picks CUDA when torch sees a GPU; asking for CUDA without one is an error."""
    if requested == "cpu":
        return "cpu"
    try:
        import torch
        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if requested == "auto":
        return "cuda" if has_cuda else "cpu"
    if requested.startswith("cuda") and not has_cuda:
        from harness.core.errors import ConfigError
        raise ConfigError(f"device {requested!r} requested but no CUDA GPU is visible to torch; "
                          "use device: cpu or auto")
    return requested
