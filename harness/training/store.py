"""Trained models as cache artefacts: `<cache>/trained/<key>/` with `metadata.json` (provenance)
and `model/` (bi_encoder, cross_encoder) or `question/` + `context/` (two_tower).

The key hashes the base model's content fingerprint, the training data key, the whole spec (loss,
hyperparameters, negatives, seed) and the versions of the libraries that train. A folder is
trained under a temporary name and renamed into place when complete, so a crash never leaves a
half-written model that a rerun would reuse.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Union

from harness.core.errors import HarnessError
from harness.core.hashing import stable_hash
from harness.storage.atomic import write_json
from harness.training.spec import TrainSpec

log = logging.getLogger(__name__)
METADATA = "metadata.json"
FORMAT = 1


@dataclass
class Trained:
    name: str
    key: str
    folder: Path
    metadata: dict
    reused: bool

    def target(self) -> Union[str, dict]:
        """What replaces a `{train: NAME}` reference (see spec.with_models)."""
        if self.metadata["spec"]["kind"] == "two_tower":
            return {role: str(self.folder / role) for role in ("question", "context")}
        return str(self.folder / "model")


def library_versions() -> dict:
    import sentence_transformers
    import torch
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__}


def training_key(spec: TrainSpec, base_fingerprint: str, data_key: str, device: str) -> str:
    return stable_hash({"format": FORMAT, "spec": spec.keyed(),
                        "loss": spec.resolved_loss, "base": base_fingerprint, "data": data_key,
                        "versions": library_versions(), "device": device})


def root(cache_dir: Path) -> Path:
    return Path(cache_dir) / "trained"


def load(cache_dir: Path, key: str) -> Optional[dict]:
    path = root(cache_dir) / key / METADATA
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{path}: unreadable trained-model record ({exc}); delete "
                           f"{path.parent} to retrain") from None


def save(cache_dir: Path, key: str, build) -> Path:
    """Run `build(folder) -> metadata` in a temporary folder and move it into place."""
    final = root(cache_dir) / key
    for stale in root(cache_dir).glob(".tmp-*-*"):  # left by killed runs, of any model
        pid = stale.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    work = root(cache_dir) / f".tmp-{key[:16]}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        metadata = build(work)
        metadata.update(key=key, format=FORMAT,
                        created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
        write_json(work / METADATA, metadata)
        try:
            os.rename(work, final)
        except OSError:  # another run finished the same model first: keep theirs
            if not (final / METADATA).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def entries(cache_dir: Path) -> list[dict]:
    """Every complete trained model in the cache, newest first."""
    base = root(cache_dir)
    found = [load(cache_dir, p.name) for p in base.iterdir()
             if p.is_dir() and not p.name.startswith(".")] if base.is_dir() else []
    return sorted((m for m in found if m), key=lambda m: m.get("created_utc", ""), reverse=True)


def find(cache_dir: Path, key_prefix: str) -> dict:
    matches = [m for m in entries(cache_dir) if m["key"].startswith(key_prefix)]
    if len(matches) != 1:
        raise HarnessError(f"{'no' if not matches else len(matches)} trained models in "
                           f"{root(cache_dir)} match key {key_prefix!r}"
                           + ("" if not matches else "; give more of the key"))
    return matches[0]


def export(cache_dir: Path, key_prefix: str, dest: Path) -> Path:
    """Copy a trained model out of the cache as plain model folder(s); refuses to overwrite."""
    meta = find(cache_dir, key_prefix)
    dest = Path(dest)
    if dest.exists():
        raise HarnessError(f"{dest} already exists; choose a new folder")
    source = root(cache_dir) / meta["key"]
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if meta["spec"]["kind"] == "two_tower":
        for role in ("question", "context"):
            shutil.copytree(source / role, tmp / role)
    else:
        shutil.copytree(source / "model", tmp)
    shutil.copy2(source / METADATA, tmp / "harness_training.json")
    os.rename(tmp, dest)
    return dest
