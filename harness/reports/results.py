"""Read a results folder (docs/results.md) into memory for reporting.

Only the tables are read eagerly; TREC runs are read on demand (they are the large files).
Optional side files the report uses when present: `qrels.tsv` (BEIR), `queries.tsv` (qid, text)
and `titles.tsv` (docid, title). Every malformed row is a DataError naming file:line.
"""
from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional

from ..errors import DataError, HarnessError
from ..trec import read_qrels, read_run
from ..types import Qrels, Run

_DEPTH_SUFFIX = re.compile(r"@(\d+)$")


@dataclass(frozen=True)
class TimingRow:
    pipeline: str
    stage: str
    mode: str
    stat: str
    value: float


@dataclass
class PipelineInfo:
    name: str
    status: str = "ok"
    reason: Optional[str] = None
    stages: list[str] = field(default_factory=list)
    parent: Optional[str] = None       # the first-stage pipeline a two-stage pipeline reranks
    rerank_depth: Optional[int] = None


@dataclass
class Results:
    path: Path
    metadata: dict
    metrics: dict[str, dict[str, float]]            # pipeline -> measure -> mean (file order)
    per_query: dict[str, dict[str, dict[str, float]]]  # pipeline -> measure -> qid -> value
    timings: list[TimingRow]
    pipelines: dict[str, PipelineInfo]               # every pipeline, failed ones included

    @property
    def run_name(self) -> str:
        return str(self.metadata.get("run_name") or self.path.name)

    @property
    def measures(self) -> list[str]:
        """Every measure in metrics.csv, in order of first appearance."""
        seen: dict[str, None] = {}
        for values in self.metrics.values():
            seen.update(dict.fromkeys(values))
        return list(seen)

    def timing(self, pipeline: str, stage: str, mode: str, stat: str) -> Optional[float]:
        return self._timing_index.get((pipeline, stage, mode, stat))

    @cached_property
    def _timing_index(self) -> dict[tuple, float]:
        return {(r.pipeline, r.stage, r.mode, r.stat): r.value for r in self.timings}

    @cached_property
    def run_files(self) -> dict[str, Path]:
        """pipeline -> its TREC run: metadata `pipelines.<name>.run` if given, else by run tag."""
        files: dict[str, Path] = {}
        for name, info in self.metadata.get("pipelines", {}).items():
            if isinstance(info, dict) and info.get("run"):
                files[name] = self.path / info["run"]
        for path in sorted((self.path / "runs").glob("*.trec")):
            tag = _first_tag(path)
            if tag is not None:
                files.setdefault(tag, path)
        return files

    def run(self, pipeline: str) -> Optional[Run]:
        path = self.run_files.get(pipeline)
        return read_run(path) if path is not None and path.exists() else None

    @cached_property
    def qrels(self) -> Optional[Qrels]:
        path = self.path / "qrels.tsv"
        return read_qrels(path) if path.exists() else None

    @cached_property
    def queries(self) -> dict[str, str]:
        return _read_two_columns(self.path / "queries.tsv")

    @cached_property
    def titles(self) -> dict[str, str]:
        return _read_two_columns(self.path / "titles.tsv")


def load_results(path) -> Results:
    path = Path(path)
    if not path.is_dir():
        raise HarnessError(f"results folder {path} does not exist")
    for required in ("metadata.json", "metrics.csv"):
        if not (path / required).is_file():
            raise HarnessError(f"{path} is not a results folder: {required} is missing "
                               "(see docs/results.md)")
    metadata = _read_json(path / "metadata.json")
    metrics: dict[str, dict[str, float]] = {}
    for where, row in _rows(path / "metrics.csv", ("pipeline", "measure", "value")):
        metrics.setdefault(row["pipeline"], {})[row["measure"]] = _number(row["value"], where)
    per_query: dict[str, dict[str, dict[str, float]]] = {}
    for where, row in _rows(path / "per_query.csv", ("pipeline", "qid", "measure", "value")):
        per_query.setdefault(row["pipeline"], {}).setdefault(row["measure"], {})[row["qid"]] = \
            _number(row["value"], where)
    timings = [TimingRow(r["pipeline"], r["stage"], r["mode"], r["stat"], _number(r["value"], w))
               for w, r in _rows(path / "timings.csv", ("pipeline", "stage", "mode", "stat", "value"))]
    return Results(path, metadata, metrics, per_query, timings, _pipelines(metadata, metrics))


def _pipelines(metadata: dict, metrics: dict) -> dict[str, PipelineInfo]:
    infos: dict[str, PipelineInfo] = {name: PipelineInfo(name) for name in metrics}
    for name, meta in (metadata.get("pipelines") or {}).items():
        meta = meta if isinstance(meta, dict) else {}
        infos[name] = PipelineInfo(name, str(meta.get("status") or "ok"), meta.get("reason"),
                                   [str(s) for s in meta.get("stages") or []], meta.get("parent"),
                                   meta.get("rerank_depth"))
    for info in infos.values():
        # Fallbacks from the runner's naming rule `<parent>>><reranker>@<depth>`.
        if info.parent is None and ">>" in info.name:
            candidate = info.name.rsplit(">>", 1)[0]
            info.parent = candidate if candidate in infos else None
        if info.rerank_depth is None and info.parent is not None:
            last = info.stages[-1] if info.stages else info.name
            match = _DEPTH_SUFFIX.search(last) or _DEPTH_SUFFIX.search(info.name)
            info.rerank_depth = int(match.group(1)) if match else None
    return infos


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data


def _rows(path: Path, columns: tuple[str, ...]):
    """(file:line, row dict) for each data row; a missing optional table yields nothing."""
    if not path.exists():
        return
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}:1: header lacks column(s) {', '.join(missing)}; "
                            f"expected {','.join(columns)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row or any(row.get(c) is None for c in columns):  # too many / too few
                raise DataError(f"{where}: expected {len(columns)} columns")
            yield where, row


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {text!r} is not a number") from None
    if math.isnan(value):
        raise DataError(f"{where}: value is NaN")
    return value


def _read_two_columns(path: Path) -> dict[str, str]:
    """`key<TAB>text` rows; a first row whose key is a header word (`qid`, `docid`...) is skipped."""
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    with open(path, encoding="utf-8-sig") as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line:
                continue
            key, sep, text = line.partition("\t")
            if not sep:
                raise DataError(f"{path}:{lineno}: expected 'id<TAB>text'")
            if lineno == 1 and key.lower() in ("qid", "query-id", "_id", "docid", "doc_id", "id"):
                continue
            out[key] = text
    return out


def _first_tag(path: Path) -> Optional[str]:
    with open(path, encoding="utf-8-sig") as handle:
        for line in handle:
            fields = line.split()
            if fields:
                return fields[-1] if len(fields) == 6 else None
    return None
