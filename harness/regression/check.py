"""Compare a results folder with expectations: every pipeline x measure, and latency ratios.

Two-sided: worse than the tolerance fails, better than it is "improved" (the baseline is stale),
and anything that cannot be compared (missing pipeline, measure or timing row; a pipeline that
failed in the run) fails too.
"""
from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from typing import Optional

from harness.storage.results_folder import Results
from harness.storage.results_folder.layout import METADATA, OK, TIMINGS
from harness.regression.baseline import Expectations, LatencyCheck
from harness.regression.tolerances import resolve_classes, tolerance_for

PASS, FAIL, IMPROVED, MISSING, RUN_FAILED = "pass", "fail", "improved", "missing", "run-failed"
FAILING = (FAIL, MISSING, RUN_FAILED)

EXIT_PASS, EXIT_FAIL, EXIT_IMPROVED = 0, 1, 3

# Float noise allowed on top of a bound, so that |0.67895 - 0.6789| <= 0.00005 holds.
_EPSILON = 1e-12


@dataclass
class Check:
    pipeline: str
    measure: str                  # an ir-measures string, or `latency:<stat>` for a ratio check
    outcome: str
    expected: Optional[float] = None
    actual: Optional[float] = None
    lower: Optional[float] = None  # the band that passes; None = unbounded on that side
    upper: Optional[float] = None
    better: str = "higher"         # which direction is an improvement
    tolerance: str = ""            # the tolerance as shown to people, e.g. "±0.00005 (deterministic)"
    detail: str = ""

    @property
    def delta(self) -> Optional[float]:
        if self.expected is None or self.actual is None:
            return None
        return self.actual - self.expected

    def as_dict(self) -> dict:
        return {**asdict(self), "delta": self.delta}


@dataclass
class Report:
    results: str
    expectations: str
    checks: list[Check]
    notes: list[str] = field(default_factory=list)
    update_hint: list[str] = field(default_factory=list)

    def count(self, *outcomes: str) -> int:
        return sum(c.outcome in outcomes for c in self.checks)

    def exit_code(self, improved_ok: bool = False) -> int:
        if self.count(*FAILING):
            return EXIT_FAIL
        if self.count(IMPROVED) and not improved_ok:
            return EXIT_IMPROVED
        return EXIT_PASS

    def summary(self) -> str:
        parts = [f"{self.count(o)} {o}" for o in (PASS, FAIL, IMPROVED, MISSING, RUN_FAILED)
                 if self.count(o)]
        verdict = ("FAILED" if self.count(*FAILING) else
                   "IMPROVED (update the baseline)" if self.count(IMPROVED) else "PASSED")
        return f"{verdict}: {len(self.checks)} checks: {', '.join(parts) or 'none'}"


def judge(actual: float, lower: Optional[float], upper: Optional[float], better: str) -> str:
    if lower is not None and actual < lower - _EPSILON:
        return FAIL if better == "higher" else IMPROVED
    if upper is not None and actual > upper + _EPSILON:
        return IMPROVED if better == "higher" else FAIL
    return PASS


def run_check(results: Results, expected: Expectations) -> Report:
    meta = results.pipelines
    need_class = [n for n, p in expected.pipelines.items()
                  if p.tolerance_class is None and n in meta]
    classes = resolve_classes(meta, str(results.path / METADATA), need_class)
    checks: list[Check] = []
    for name, pipe in expected.pipelines.items():
        if name not in meta:
            checks.append(Check(name, "*", MISSING, detail="pipeline not in this run "
                                f"(metadata.json has: {', '.join(meta) or 'none'})"))
            continue
        if meta[name].status != OK:
            checks.append(Check(name, "*", RUN_FAILED,
                                detail=f"pipeline failed in this run: {meta[name].reason}"))
            continue
        cls = pipe.tolerance_class or classes[name]
        measured = results.metrics.get(name, {})
        for measure, value in pipe.measures.items():
            tol = tolerance_for(measure, cls, pipe.tolerance, expected.class_tolerances)
            shown = f"±{tol:g} ({cls})"
            if measure not in measured:
                checks.append(Check(name, measure, MISSING, value, tolerance=shown,
                                    detail="measure not in metrics.csv for this pipeline"))
                continue
            actual = measured[measure]
            checks.append(Check(name, measure, judge(actual, value - tol, value + tol, "higher"),
                                value, actual, value - tol, value + tol, "higher", shown))
        checks += [_latency_check(results, name, lat) for lat in pipe.latency]
    return Report(str(results.path), str(expected.source), checks,
                  _notes(results, expected), _update_hint(results, expected, checks))


def _latency_check(results: Results, name: str, lat: LatencyCheck) -> Check:
    measure = f"latency:{lat.stat}"
    shown = (f"ratio <= {lat.max_ratio:.3g}" + (f", >= {lat.min_ratio:.3g}" if lat.min_ratio else "")
             + f" x {lat.reference}")
    values = {}
    for pipeline in (name, lat.reference):
        key = (pipeline, lat.stage, lat.mode, lat.stat)
        value = results.timing(*key)
        if value is None or value <= 0:
            return Check(name, measure, MISSING, lat.expected_ratio, tolerance=shown,
                         detail=f"no positive row {','.join(key)} in {TIMINGS}")
        values[pipeline] = value
    ratio = values[name] / values[lat.reference]
    detail = (f"{lat.stage}/{lat.mode} {lat.stat}: {values[name]:.3f} vs "
              f"{lat.reference} {values[lat.reference]:.3f}")
    return Check(name, measure, judge(ratio, lat.min_ratio, lat.max_ratio, "lower"),
                 lat.expected_ratio, ratio, lat.min_ratio, lat.max_ratio, "lower", shown, detail)


def _notes(results: Results, expected: Expectations) -> list[str]:
    notes = []
    unchecked = [n for n in results.pipelines if n not in expected.pipelines]
    if unchecked:
        notes.append(f"not checked (no expectations): {', '.join(unchecked)}")
    was = expected.recorded_from.get("dataset") or {}
    now = results.metadata.get("dataset") or {}
    differ = [f"{k} {was[k]!r} -> {now.get(k)!r}" for k in ("name", "split", "n_docs", "n_queries")
              if was.get(k) is not None and was[k] != now.get(k)]
    if differ:
        notes.append(f"warning: the baseline was recorded on a different dataset: {'; '.join(differ)}")
    return notes


def _update_hint(results: Results, expected: Expectations, checks: list[Check]) -> list[str]:
    improved = [c for c in checks if c.outcome == IMPROVED]
    if not improved:
        return []
    if expected.from_config:
        lines = [f"update the `expect:` blocks of the config this run came from "
                 f"({expected.source} is its resolved copy):"]
        for name, pipe in expected.pipelines.items():
            if any(c.pipeline == name for c in improved):
                values = results.metrics.get(name, {})
                new = ", ".join(f"{m}: {values[m]:.4f}" for m in pipe.measures if m in values)
                lines.append(f"  {name}: expect: {{{new}}}")
        return lines
    command = ["harness", "baseline", str(results.path), "--write", str(expected.source),
               "--pipelines", ",".join(expected.pipelines)]
    references = {lat.reference for p in expected.pipelines.values() for lat in p.latency}
    stats = {lat.stat for p in expected.pipelines.values() for lat in p.latency}
    if len(references) == 1 and len(stats) == 1:
        command += ["--latency-reference", *references, "--latency-stat", *stats]
    return ["update the baseline (tolerance overrides in it are kept):", "  " + shlex.join(command)]
