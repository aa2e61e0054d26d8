"""Read a results folder (docs/results.md): the one reader of reports and regression checks.

One strictness policy: every malformed file or row is a DataError naming file:line (metadata.json:
the field), and a file the runner always writes is an error when absent at the moment it is
needed. metadata.json and metrics.csv are read at load; per_query.csv, timings.csv, config.yaml,
runs and the report side files on first use (a check reads no runs, a report no config).
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional

import yaml

from harness.core.errors import DataError
from harness.storage.trec import read_qrels, read_run
from harness.core.types import Qrels, Run
from harness.storage.results_folder import layout as L


@dataclass(frozen=True)
class TimingRow:
    pipeline: str
    stage: str
    mode: str
    stat: str
    value: float
    line: int  # in timings.csv


@dataclass(frozen=True)
class PipelineInfo:
    """A `pipelines.<name>` entry of metadata.json; the fields are its keys."""

    name: str
    status: str = L.OK
    reason: Optional[str] = None
    kind: Optional[str] = None           # its last stage: first_stage, fusion or rerank
    tolerance_class: Optional[str] = None  # how a regression check compares it
    parent: Optional[str] = None         # for a reranked pipeline, the pipeline it reranks
    rerank_depth: Optional[int] = None
    sweep: Optional[str] = None          # for an ANN sweep point, its family `<entry>/<backend>`
    stages: tuple[str, ...] = ()         # stage labels, inputs first: `retriever:bm25`, ...
    run_file: Optional[str] = None       # its TREC run, relative to the folder
    models: Optional[dict] = None        # stage label -> {config field: {name, fingerprint}}


# metadata.json type of each optional PipelineInfo field (absent or null: the default).
_FIELD_TYPES = {"reason": str, "kind": str, "tolerance_class": str, "parent": str,
                "rerank_depth": int, "sweep": str, "stages": list, "run_file": str, "models": dict}


@dataclass
class Results:
    path: Path
    metadata: dict
    pipelines: dict[str, PipelineInfo]       # metadata.json order; failed pipelines included
    metrics: dict[str, dict[str, float]]     # pipeline -> measure -> mean, metrics.csv order

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

    @cached_property
    def per_query(self) -> dict[str, dict[str, dict[str, float]]]:
        """pipeline -> measure -> qid -> value."""
        path = self.path / L.PER_QUERY
        out: dict[str, dict[str, dict[str, float]]] = {}
        first: dict[tuple, int] = {}
        for line, (pipeline, qid, measure, value) in _rows(path, L.PER_QUERY_HEADER):
            self._check_pipeline(pipeline, path, line)
            _once(first, (pipeline, qid, measure), path, line)
            out.setdefault(pipeline, {}).setdefault(measure, {})[qid] = \
                _number(value, path, line, finite=True)
        return out

    @cached_property
    def timings(self) -> list[TimingRow]:
        path = self.path / L.TIMINGS
        rows = []
        for line, (pipeline, stage, mode, stat, value) in _rows(path, L.TIMINGS_HEADER):
            self._check_pipeline(pipeline, path, line)
            # inf is a measurement: q/s of a call too fast for the clock (evaluation/timing.py)
            rows.append(TimingRow(pipeline, stage, mode, stat,
                                  _number(value, path, line, finite=False), line))
        return rows

    def timing(self, pipeline: str, stage: str, mode: str, stat: str) -> Optional[float]:
        """One timings.csv value; a key on several rows is an error only when asked for (a
        fusion of fusions repeats `fusion` rows, which nothing reads one by one)."""
        rows = self._timing_index.get((pipeline, stage, mode, stat), [])
        if len(rows) > 1:
            lines = ", ".join(str(r.line) for r in rows)
            raise DataError(f"{self.path / L.TIMINGS}: row {pipeline},{stage},{mode},{stat} is "
                            f"ambiguous (lines {lines})")
        return rows[0].value if rows else None

    @cached_property
    def _timing_index(self) -> dict[tuple, list[TimingRow]]:
        index: dict[tuple, list[TimingRow]] = {}
        for r in self.timings:
            index.setdefault((r.pipeline, r.stage, r.mode, r.stat), []).append(r)
        return index

    def config(self) -> dict:
        return read_yaml_mapping(self.path / L.CONFIG)

    def config_text(self) -> str:
        return _read_text(self.path / L.CONFIG)

    def run_file(self, pipeline: str) -> Optional[Path]:
        """The run metadata.json records for the pipeline (None: none recorded, e.g. failed)."""
        info = self.pipelines.get(pipeline)
        return self.path / info.run_file if info and info.run_file else None

    def run(self, pipeline: str) -> Optional[Run]:
        """The pipeline's run; None when none is recorded or its file is not in the folder (a
        copy without the large runs/ folder still reports everything else)."""
        path = self.run_file(pipeline)
        return read_run(path) if path is not None and path.exists() else None

    @cached_property
    def qrels(self) -> Optional[Qrels]:
        path = self.path / L.QRELS
        return read_qrels(path) if path.exists() else None

    @cached_property
    def queries(self) -> dict[str, str]:
        return _read_tsv(self.path / L.QUERIES, L.QUERIES_HEADER)

    @cached_property
    def titles(self) -> dict[str, str]:
        return _read_tsv(self.path / L.TITLES, L.TITLES_HEADER)

    def _check_pipeline(self, pipeline: str, path: Path, line: int) -> None:
        info = self.pipelines.get(pipeline)
        if info is None:
            raise DataError(f"{path}:{line}: pipeline {pipeline!r} is not in "
                            f"{L.METADATA} `{L.PIPELINES}`")
        if info.status != L.OK:
            raise DataError(f"{path}:{line}: pipeline {pipeline!r} has status {info.status!r} "
                            f"in {L.METADATA}: a failed pipeline has no rows here")


def load_results(path) -> Results:
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: results folder not found")
    metadata = _read_json(path / L.METADATA)
    results = Results(path, metadata, _pipelines(metadata, path / L.METADATA), {})
    where = path / L.METRICS
    first: dict[tuple, int] = {}
    for line, (pipeline, measure, value) in _rows(where, L.METRICS_HEADER):
        results._check_pipeline(pipeline, where, line)
        _once(first, (pipeline, measure), where, line)
        results.metrics.setdefault(pipeline, {})[measure] = _number(value, where, line,
                                                                    finite=True)
    return results


def _pipelines(metadata: dict, path: Path) -> dict[str, PipelineInfo]:
    entries = metadata.get(L.PIPELINES)
    if not isinstance(entries, dict):
        raise DataError(f"{path}: expected a JSON object with a `{L.PIPELINES}` mapping")
    infos = {name: _pipeline(name, entry, f"{path}: {L.PIPELINES}.{name}")
             for name, entry in entries.items()}
    for info in infos.values():
        if info.parent is not None and info.parent not in infos:
            raise DataError(f"{path}: {L.PIPELINES}.{info.name}.parent: {info.parent!r} is not "
                            "a pipeline of this run")
    return infos


def _pipeline(name: str, entry, where: str) -> PipelineInfo:
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected a mapping")
    if entry.get("status") not in (L.OK, L.FAILED):
        raise DataError(f"{where}.status: expected {L.OK!r} or {L.FAILED!r}, "
                        f"got {entry.get('status')!r}")
    values = {}
    for key, kind in _FIELD_TYPES.items():
        value = entry.get(key)
        if value is None:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise DataError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
        values[key] = value
    if "stages" in values:
        if not all(isinstance(s, str) for s in values["stages"]):
            raise DataError(f"{where}.stages: expected a list of stage labels")
        values["stages"] = tuple(values["stages"])
    for label, by_field in values.get("models", {}).items():
        if not isinstance(by_field, dict) or not all(
                isinstance(m, dict) and isinstance(m.get("name"), str) for m in by_field.values()):
            raise DataError(f"{where}.models.{label}: expected {{<config field>: {{name, "
                            f"fingerprint}}}}, got {by_field!r}")
    run_file = PurePosixPath(values.get("run_file", ""))
    if run_file.is_absolute() or ".." in run_file.parts:
        raise DataError(f"{where}.run_file: {str(run_file)!r} is not a path inside the folder")
    return PipelineInfo(name, entry["status"], **values)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_yaml_mapping(path: Path) -> dict:
    """A YAML file whose top level is a mapping (config.yaml, baseline files)."""
    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise DataError(f"{where}: YAML syntax error: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a YAML mapping, got {type(data).__name__}")
    return data


def _rows(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """(line number, row) of a CSV with exactly `header`, every row as wide."""
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            first = next(reader, None)
            if first != list(header):
                raise DataError(f"{path}:1: expected header {','.join(header)!r}, got "
                                f"{','.join(first or [])!r}")
            for row in reader:
                if len(row) != len(header):
                    raise DataError(f"{path}:{reader.line_num}: expected {len(header)} columns, "
                                    f"got {len(row)}")
                yield reader.line_num, row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(f"{path}:{reader.line_num}: unreadable CSV: {exc}") from None


def _number(text: str, path: Path, line: int, finite: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}:{line}: value {text!r} is not a number") from None
    if math.isnan(value) or (finite and math.isinf(value)):
        shown = "finite" if finite else "a number"
        raise DataError(f"{path}:{line}: value {text!r} is not {shown}")
    return value


def _once(first: dict[tuple, int], key: tuple, path: Path, line: int) -> None:
    if key in first:
        raise DataError(f"{path}:{line}: repeated row {','.join(key)} (first on line {first[key]})")
    first[key] = line


def _read_tsv(path: Path, header: tuple[str, ...]) -> dict[str, str]:
    """`key<TAB>text` rows under `header`, as the writer writes them; {} when the file is absent."""
    if not path.exists():
        return {}
    lines = _read_text(path).split("\n")
    if lines[0] != "\t".join(header):
        raise DataError(f"{path}:1: expected header {chr(9).join(header)!r}, got {lines[0]!r}")
    out: dict[str, str] = {}
    first: dict[tuple, int] = {}
    for line, text in enumerate(lines[1:], start=2):
        if not text and line == len(lines):
            break  # the final newline
        key, sep, value = text.partition("\t")
        if not sep or "\t" in value or not key:
            raise DataError(f"{path}:{line}: expected '{header[0]}<TAB>{header[1]}'")
        _once(first, (key,), path, line)
        out[key] = value
    return out
