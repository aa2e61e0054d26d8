"""Finished nodes on disk, the resume points of a run: `<key>.trec` (its run) and `<key>.json`
(label, timings, stage stats and models, the run file's sha256). The JSON is written last, so a
node interrupted mid-write has no JSON and is recomputed; a run file that no longer matches its
hash is too."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from harness.storage.atomic import write_json
from harness.core.hashing import sha256_file
from harness.storage.trec import read_run, write_run
from harness.core.types import Run

log = logging.getLogger(__name__)


@dataclass
class NodeRecord:
    key: str
    label: str
    run: Run
    timings: list  # (mode, stat, value)
    extra: dict = field(default_factory=dict)  # {measure: {qid: value}} from ExtraMeasures
    flags: dict = field(default_factory=dict)  # {flag: count} from FlagsResults
    substages: list = field(default_factory=list)  # (stage, mode, stat, value) from HasSubstages
    stats: dict = field(default_factory=dict)  # from Reports, after the timed batch
    models: dict = field(default_factory=dict)  # {field: {name, fingerprint}} from LoadsModels


class NodeStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def save(self, record: NodeRecord) -> None:
        run_path = self.root / f"{record.key}.trec"
        write_run(run_path, record.run, "node")
        write_json(self.root / f"{record.key}.json",
                   {"key": record.key, "label": record.label, "run_sha256": sha256_file(run_path),
                    "timings": [list(t) for t in record.timings], "extra": record.extra,
                    "flags": record.flags, "substages": [list(t) for t in record.substages],
                    "stats": record.stats, "models": record.models})

    def load(self, key: str) -> Optional[NodeRecord]:
        meta_path, run_path = self.root / f"{key}.json", self.root / f"{key}.trec"
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("key") != key or sha256_file(run_path) != meta["run_sha256"]:
                raise ValueError("content does not match its recorded hash")
            run = read_run(run_path) if run_path.stat().st_size else {}
            return NodeRecord(key, meta["label"], run, [tuple(t) for t in meta["timings"]],
                              meta.get("extra", {}), meta.get("flags", {}),
                              [tuple(t) for t in meta.get("substages", [])],
                              meta.get("stats", {}), meta.get("models", {}))
        except Exception as exc:
            log.warning("recomputing node %s: saved result unusable (%s)", key[:12], exc)
            return None
