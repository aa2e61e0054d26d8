"""What every plugin may need from the run besides its own parameters."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_cache_dir() -> Path:
    """Embeddings and indexes are cached here; override with HARNESS_CACHE_DIR."""
    return Path(os.environ.get("HARNESS_CACHE_DIR", Path.cwd() / ".cache" / "harness"))


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
        from .errors import ConfigError
        raise ConfigError(f"device {requested!r} requested but no CUDA GPU is visible to torch; "
                          "use device: cpu or auto")
    return requested
