"""Datasets by name or path: bundled (offline, checksum-verified), downloaded BEIR, or a BEIR folder;
or by ir_datasets id (`load_ir_dataset`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.types import Dataset
from harness.datasets.beir import load_beir
from harness.datasets.download import BEIR_MD5, default_base_url, default_cache_dir
from harness.datasets.files import find_file, read_sha256sums, verify_sha256sums
from harness.datasets.ir_datasets_source import load_ir_dataset
from harness.datasets.slice import slice_dataset

# `download` stays a submodule (harness.datasets.download.download), not re-exported here, so that
# `harness.datasets.download` always names the module.
__all__ = ["DatasetEntry", "bundled_dir", "list_datasets", "load_beir", "load_dataset", "load_ir_dataset",
           "slice_dataset"]


def bundled_dir() -> Path:
    """Datasets shipped inside the package (harness/data/datasets/<name>/ with a SHA256SUMS)."""
    return Path(__file__).resolve().parent.parent / "data" / "datasets"


def _bundled() -> dict[str, Path]:
    root = bundled_dir()
    if not root.is_dir():
        return {}
    return {p.parent.name: p.parent for p in sorted(root.glob("*/SHA256SUMS"))}


def _downloaded(name: str) -> Path | None:
    # Names may reach into a download ("cqadupstack/android") but never out of the cache.
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        return None
    folder = default_cache_dir() / relative
    return folder if find_file(folder, "corpus.jsonl") else None


def load_dataset(name_or_path: str, split: str = "test") -> Dataset:
    """Load a bundled dataset, else one downloaded into the cache, else a BEIR folder at that path."""
    bundled = _bundled()
    if name_or_path in bundled:
        folder = bundled[name_or_path]
        expected = read_sha256sums(folder / "SHA256SUMS")
        verify_sha256sums(folder, expected, ["corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"])
        return load_beir(folder, split, name=name_or_path)
    downloaded = _downloaded(name_or_path)
    if downloaded is not None:
        return load_beir(downloaded, split, name=name_or_path)
    path = Path(name_or_path)
    if path.is_dir():
        return load_beir(path, split)
    raise HarnessError(
        f"unknown dataset {name_or_path!r}: not a bundled dataset ({', '.join(bundled) or 'none'}), "
        f"not downloaded into {default_cache_dir()}, and not a folder. Downloadable: "
        f"{', '.join(sorted(BEIR_MD5))} (harness datasets download NAME)")


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    status: str      # "bundled", "downloaded" or "downloadable"
    location: str    # folder, or the URL it would come from


def list_datasets() -> list[DatasetEntry]:
    """Every dataset `load_dataset` accepts by name, bundled first."""
    bundled = _bundled()
    entries = [DatasetEntry(name, "bundled", str(folder)) for name, folder in bundled.items()]
    for name in sorted(set(BEIR_MD5) - set(bundled)):  # a bundled name always loads the bundled copy
        folder = default_cache_dir() / name
        if folder.is_dir():
            entries.append(DatasetEntry(name, "downloaded", str(folder)))
        else:
            entries.append(DatasetEntry(name, "downloadable", f"{default_base_url()}/{name}.zip"))
    return entries
