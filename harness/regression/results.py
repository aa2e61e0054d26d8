"""Strict reading of the parts of a results folder (docs/results.md) that a check compares.

Every problem raises DataError naming the file (and line): a check that cannot read its input
fails; it never treats an unreadable value as missing or zero.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from ..errors import DataError

METRICS_HEADER = ["pipeline", "measure", "value"]
TIMINGS_HEADER = ["pipeline", "stage", "mode", "stat", "value"]


@dataclass
class Results:
    folder: Path
    metadata: dict
    metrics: dict[str, dict[str, float]]                    # pipeline -> measure -> value
    _timings: Optional[Timings] = field(default=None, repr=False)

    @property
    def pipelines(self) -> dict[str, dict]:
        return self.metadata["pipelines"]

    def timings(self) -> Timings:
        """Read on first use: only latency checks need timings.csv."""
        if self._timings is None:
            self._timings = read_timings(self.folder / "timings.csv")
        return self._timings

    def config(self) -> dict:
        return read_yaml_mapping(self.folder / "config.yaml")

    def fuse_inputs(self) -> dict[str, list]:
        """Fusion pipeline -> its input pipelines, from config.yaml when the folder has one."""
        if not (self.folder / "config.yaml").exists():
            return {}
        pipes = self.config().get("pipelines") or []
        return {p["name"]: list(p["fuse"].get("inputs") or []) for p in pipes
                if isinstance(p, dict) and isinstance(p.get("fuse"), dict) and "name" in p}


def load_results(folder) -> Results:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: results folder not found")
    return Results(folder, read_metadata(folder / "metadata.json"),
                   read_metrics(folder / "metrics.csv"))


def read_metadata(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("pipelines"), dict):
        raise DataError(f"{path}: expected a JSON object with a `pipelines` mapping")
    for name, meta in data["pipelines"].items():
        if not isinstance(meta, dict):
            raise DataError(f"{path}: pipelines.{name}: expected a mapping")
    return data


def read_yaml_mapping(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise DataError(f"{where}: YAML syntax error: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a YAML mapping, got {type(data).__name__}")
    return data


def _rows(path: Path, header: list[str]):
    """Yields (line number, row) of a CSV with exactly `header`, each row the same width."""
    try:
        fh = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    with fh:
        reader = csv.reader(fh)
        try:
            first = next(reader, None)
            if first != header:
                raise DataError(f"{path}:1: expected header {','.join(header)!r}, got "
                                f"{','.join(first or [])!r}")
            for row in reader:
                if len(row) != len(header):
                    raise DataError(f"{path}:{reader.line_num}: expected {len(header)} columns, "
                                    f"got {len(row)}")
                yield reader.line_num, row
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(f"{path}:{reader.line_num}: unreadable CSV: {exc}") from None


def _number(text: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}:{line}: value {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{path}:{line}: value {text!r} is not finite")
    return value


def read_metrics(path: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for line, (pipeline, measure, value) in _rows(path, METRICS_HEADER):
        if measure in out.get(pipeline, {}):
            raise DataError(f"{path}:{line}: repeated row for pipeline {pipeline!r}, "
                            f"measure {measure!r}")
        out.setdefault(pipeline, {})[measure] = _number(value, path, line)
    return out


@dataclass
class Timings:
    """timings.csv rows by (pipeline, stage, mode, stat). A key on several rows is ambiguous:
    an error when a check asks for it, harmless otherwise (a fusion's per-input stage rows)."""

    path: Path
    values: dict[tuple, float]
    repeated: dict[tuple, list[int]]  # key -> its line numbers

    def get(self, key: tuple) -> Optional[float]:
        if key in self.repeated:
            lines = ", ".join(map(str, self.repeated[key]))
            raise DataError(f"{self.path}: row {','.join(key)} is ambiguous (lines {lines})")
        return self.values.get(key)


def read_timings(path: Path) -> Timings:
    values: dict[tuple, float] = {}
    lines: dict[tuple, list[int]] = {}
    for line, (*key, value) in _rows(path, TIMINGS_HEADER):
        values[tuple(key)] = _number(value, path, line)
        lines.setdefault(tuple(key), []).append(line)
    return Timings(path, values, {k: v for k, v in lines.items() if len(v) > 1})
