"""Download public BEIR datasets into a local cache, verified against the published checksums.

Nothing half-written is ever visible: the zip goes to a temp file, is verified, is extracted into a
temp folder, and only then is the dataset folder renamed into place.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Optional, Union

from harness.core.errors import HarnessError

DEFAULT_BASE_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"

# md5 of each <name>.zip as published in the BEIR README ("Available Datasets" table). md5 is what
# BEIR publishes; it guards against corrupt or substituted downloads, not against an attacker.
# BioASQ, Signal-1M, TREC-NEWS and Robust04 are not redistributable, so they have no zip.
BEIR_MD5 = {
    "msmarco": "444067daf65d982533ea17ebd59501e4",
    "trec-covid": "ce62140cb23feb9becf6270d0d1fe6d1",
    "nfcorpus": "a89dba18a62ef92f7d323ec890a0d38d",
    "nq": "d4d3d2e48787a744b6f6e691ff534307",
    "hotpotqa": "f412724f78b0d91183a0e86805e16114",
    "fiqa": "17918ed23cd04fb15047f73e6c3bd9d9",
    "arguana": "8ad3e3c2a5867cdced806d6503f29b99",
    "webis-touche2020": "46f650ba5a527fc69e0a6521c5a23563",
    "cqadupstack": "4e41456d7df8ee7760a7f866133bda78",
    "quora": "18fb154900ba42a600f84b839c173167",
    "dbpedia-entity": "c2a39eb420a3164af735795df012ac2c",
    "scidocs": "38121350fc3a4d2f48850f6aff52e4a9",
    "fever": "5a818580227bfb4b35bb6fa46d9b6c03",
    "climate-fever": "8b66f0a9126c521bae2bde127b4dc99d",
    "scifact": "5f7d1de60b170fc8027bb7898e2efca1",
}

_CHUNK = 1 << 20
_TIMEOUT_S = 60


def default_cache_dir() -> Path:
    """Where downloaded datasets live: $HARNESS_DATA_DIR, else ~/.cache/retrieval-harness/datasets."""
    configured = os.environ.get("HARNESS_DATA_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "retrieval-harness" / "datasets"


def default_base_url() -> str:
    return os.environ.get("HARNESS_BEIR_BASE_URL", DEFAULT_BASE_URL).rstrip("/")


def download(name: str, cache_dir: Optional[Union[str, Path]] = None,
             base_url: Optional[str] = None) -> Path:
    """Fetch and unpack BEIR dataset `name`; returns its folder. An existing folder is reused."""
    if name not in BEIR_MD5:
        raise HarnessError(f"no downloadable BEIR dataset {name!r}; choices: {', '.join(sorted(BEIR_MD5))}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / name
    if target.is_dir():
        return target
    url = f"{(base_url or default_base_url()).rstrip('/')}/{name}.zip"
    root.mkdir(parents=True, exist_ok=True)
    fd, zip_tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".zip.tmp", dir=root)
    os.close(fd)
    try:
        md5 = _fetch(url, Path(zip_tmp), name)
        if md5 != BEIR_MD5[name]:
            raise HarnessError(f"checksum mismatch for {url}: md5 {md5}, expected {BEIR_MD5[name]}; "
                               "the download is corrupt or the server sent a different file. "
                               "Nothing was kept; try again or use another mirror "
                               "(HARNESS_BEIR_BASE_URL)")
        _extract(Path(zip_tmp), root, name, target)
    finally:
        Path(zip_tmp).unlink(missing_ok=True)
    return target


def _fetch(url: str, dest: Path, name: str) -> str:
    """Stream `url` into `dest`; returns the md5 of what was received."""
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, open(dest, "wb") as out:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise HarnessError(f"download of {url} failed: HTTP {exc.code} {exc.reason}. "
                           f"{_manual_hint(url, name)}") from None
    except (urllib.error.URLError, OSError) as exc:  # refused, DNS, timeout, reset
        reason = getattr(exc, "reason", None) or exc
        raise HarnessError(f"cannot reach {url}: {reason}. Offline? {_manual_hint(url, name)}") from None
    return digest.hexdigest()


def _manual_hint(url: str, name: str) -> str:
    return (f"Download {url} yourself, unzip it and pass the folder path (e.g. ./{name}) "
            "instead of the name")


def _extract(zip_path: Path, root: Path, name: str, target: Path) -> None:
    """Unzip into a temp folder beside `target`, then rename the dataset folder into place."""
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    try:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                for member in archive.namelist():
                    resolved = (staging / member).resolve()
                    if not resolved.is_relative_to(staging.resolve()):
                        raise HarnessError(f"{name}.zip: member {member!r} escapes the archive folder")
                archive.extractall(staging)
        except zipfile.BadZipFile as exc:
            raise HarnessError(f"{name}.zip is not a valid zip file: {exc}") from None
        # BEIR zips hold one top folder named after the dataset; accept a flat zip too.
        source = staging / name if (staging / name).is_dir() else staging
        try:
            os.rename(source, target)
        except OSError:
            if not target.is_dir():  # another process finishing first is fine; anything else is not
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
