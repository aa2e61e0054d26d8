"""Expected values: baseline files (`baselines/<name>.yaml`) and `expect:` blocks in a config.

Both become one `Expectations` object that `check.py` compares a results folder against.
The file format is documented in docs/regression.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.storage.atomic import write_text
from harness.core.errors import DataError, HarnessError
from harness.storage.results_folder import Results, read_yaml_mapping
from harness.storage.results_folder.layout import (CONFIG, LATENCY_STATS, METADATA, METRICS, OK, P95_MS, SINGLE,
                                                   TIMINGS, TOTAL)
from harness.regression.tolerances import CLASSES, DEFAULT_TOLERANCES, resolve_classes

FORMAT_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatencyCheck(_Strict):
    """pipeline's `stat` <= max_ratio x the reference pipeline's `stat`, both from the same run."""

    reference: str
    max_ratio: float = Field(gt=0)
    min_ratio: Optional[float] = Field(None, gt=0, description="below it: improved")
    expected_ratio: Optional[float] = Field(None, gt=0, description="measured by the baseline run")
    stat: Literal[LATENCY_STATS] = P95_MS
    stage: str = TOTAL
    mode: str = SINGLE


class PipelineBaseline(_Strict):
    kind: Optional[str] = Field(None, description="metadata.json kind of the baseline run")
    tolerance_class: Optional[Literal[CLASSES]] = None
    measures: Dict[str, float] = Field(default_factory=dict)
    tolerance: Dict[str, float] = Field(default_factory=dict)
    latency: List[LatencyCheck] = Field(default_factory=list)

    @field_validator("latency", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, dict) else value

    @field_validator("tolerance")
    @classmethod
    def _non_negative(cls, value):
        bad = [m for m, t in value.items() if t < 0]
        if bad:
            raise ValueError(f"tolerances must be >= 0: {', '.join(bad)}")
        return value


class BaselineFile(_Strict):
    version: Literal[FORMAT_VERSION] = FORMAT_VERSION
    recorded_from: dict = Field(default_factory=dict)
    tolerances: Dict[Literal[CLASSES], float] = Field(default_factory=dict)
    pipelines: Dict[str, PipelineBaseline] = Field(min_length=1)


@dataclass
class Expectations:
    source: Path                       # the baseline file or the run's config.yaml
    from_config: bool                  # expectations from `expect:` blocks, not a baseline file
    pipelines: Dict[str, PipelineBaseline]
    class_overrides: Dict[str, float]  # the file's `tolerances:` (defaults per class)
    recorded_from: dict

    @property
    def class_tolerances(self) -> Dict[str, float]:
        return {**DEFAULT_TOLERANCES, **self.class_overrides}


def _field_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{path}: {msg}")
    return "\n  ".join(lines)


def load_baseline(path) -> Expectations:
    path = Path(path)
    data = read_yaml_mapping(path)
    try:
        parsed = BaselineFile.model_validate(data)
    except ValidationError as exc:
        raise DataError(f"{path}: invalid baseline:\n  {_field_errors(exc)}") from None
    return Expectations(path, False, parsed.pipelines, dict(parsed.tolerances),
                        parsed.recorded_from)


def expectations_from_config(results: Results) -> Expectations:
    """The `expect:`/`tolerance:` blocks of the run's resolved config (RESULTS/config.yaml)."""
    path = results.path / CONFIG
    pipes = results.config().get("pipelines")
    if not isinstance(pipes, list):
        raise DataError(f"{path}: expected a `pipelines:` list")
    out: Dict[str, PipelineBaseline] = {}
    for i, spec in enumerate(pipes):
        if not isinstance(spec, dict) or "name" not in spec:
            raise DataError(f"{path}: pipelines[{i}]: expected a mapping with a `name`")
        if not spec.get("expect"):
            continue
        try:
            out[spec["name"]] = PipelineBaseline(measures=spec["expect"],
                                                 tolerance=spec.get("tolerance") or {})
        except ValidationError as exc:
            raise DataError(f"{path}: pipelines[{i}] ({spec['name']}):\n  "
                            f"{_field_errors(exc)}") from None
    if not out:
        raise DataError(f"{path}: no pipeline has an `expect:` block; nothing to check "
                        f"(give --baseline FILE, or add expect: {{nDCG@10: ...}} to the config)")
    return Expectations(path, True, out, {}, {})


def baseline_from_results(results: Results, pipelines: Optional[List[str]] = None,
                          latency_reference: Optional[str] = None, latency_stat: str = P95_MS,
                          latency_slack: float = 1.5) -> BaselineFile:
    """A baseline of every measure of `pipelines` (default: every pipeline that ran), values at
    full precision. With `latency_reference`, each other pipeline gets a latency ratio check
    whose bounds are the measured ratio times/divided by `latency_slack`."""
    meta = results.pipelines
    names = pipelines or [n for n, m in meta.items() if m.status == OK]
    unknown = [n for n in names if n not in meta]
    if unknown:
        raise HarnessError(f"unknown pipeline(s) {', '.join(unknown)}; the run has: "
                           f"{', '.join(meta)}")
    for name in names:
        if meta[name].status != OK:
            raise HarnessError(f"pipeline {name!r} failed in this run "
                               f"({meta[name].reason}); it cannot be a baseline")
        if not results.metrics.get(name):
            raise HarnessError(f"pipeline {name!r} has no rows in {results.path / METRICS}")
    classes = resolve_classes(meta, str(results.path / METADATA))
    ref_value = None
    if latency_reference:
        if latency_reference not in meta:
            raise HarnessError(f"unknown latency reference {latency_reference!r}; the run has: "
                               f"{', '.join(meta)}")
        ref_value = _latency(results, latency_reference, latency_stat)

    out: Dict[str, PipelineBaseline] = {}
    for name in names:
        latency = []
        if ref_value is not None and name != latency_reference:
            ratio = _latency(results, name, latency_stat) / ref_value
            latency.append(LatencyCheck(reference=latency_reference, stat=latency_stat,
                                        expected_ratio=ratio, max_ratio=ratio * latency_slack,
                                        min_ratio=ratio / latency_slack))
        out[name] = PipelineBaseline(kind=meta[name].kind, tolerance_class=classes[name],
                                     measures=dict(results.metrics[name]), latency=latency)
    md = results.metadata
    dataset = md.get("dataset") or {}
    recorded = {
        "run_name": md.get("run_name"), "config_name": md.get("config_name"),
        "config_hash": md.get("config_hash"), "git_commit": md.get("git_commit"),
        "created_utc": md.get("created_utc"),
        "dataset": {k: dataset.get(k) for k in ("name", "split", "n_docs", "n_queries")},
    }
    return BaselineFile(recorded_from=recorded, pipelines=out)


def _latency(results: Results, pipeline: str, stat: str, stage: str = TOTAL,
             mode: str = SINGLE) -> float:
    key = (pipeline, stage, mode, stat)
    value = results.timing(*key)
    if value is None or value <= 0:
        raise HarnessError(f"{results.path / TIMINGS}: no positive row "
                           f"{','.join(key)}; latency ratios need single-query timings "
                           f"(timing.latency_queries > 0)")
    return value


def write_baseline(baseline: BaselineFile, path) -> None:
    data = baseline.model_dump(mode="json", exclude_none=True)
    for pipe in data["pipelines"].values():  # optional blocks only where they say something
        for key in ("tolerance", "latency"):
            if not pipe[key]:
                del pipe[key]
    if not data["tolerances"]:
        del data["tolerances"]
    header = ("# Regression baseline (format: docs/regression.md). Written by `harness baseline`;\n"
              "# values are full precision. Edit tolerances freely; re-run to update values.\n")
    write_text(path, header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

