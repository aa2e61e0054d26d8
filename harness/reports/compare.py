"""`harness report A B`: two results folders side by side (e.g. before/after a change).

For each pipeline × measure in either folder: A's mean, B's mean, Δ = B − A, and, where both have
per-query values for common queries, the paired tests (Holm-adjusted over the table).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .. import atomic
from ..evaluation import significance as sig
from . import markdown
from . import formatting as fmt
from .render import render
from .results import Results, load_results

DEFAULT_REPORTS_DIR = Path("reports")


@dataclass(frozen=True)
class Delta:
    pipeline: str
    measure: str
    a: Optional[float]
    b: Optional[float]
    comparison: Optional[sig.Comparison]   # paired B vs A over common queries

    @property
    def delta(self) -> Optional[float]:
        return None if self.a is None or self.b is None else self.b - self.a


def deltas(a: Results, b: Results, n_resamples: int, seed: int) -> list[Delta]:
    pipelines = list(dict.fromkeys([*a.metrics, *b.metrics]))
    measures = list(dict.fromkeys([*a.measures, *b.measures]))
    rows = []
    for p in pipelines:
        for m in measures:
            mean_a, mean_b = a.metrics.get(p, {}).get(m), b.metrics.get(p, {}).get(m)
            if mean_a is None and mean_b is None:
                continue
            qa = a.per_query.get(p, {}).get(m, {})
            qb = b.per_query.get(p, {}).get(m, {})
            common = [q for q in qa if q in qb]
            comparison = (sig.compare([qb[q] for q in common], [qa[q] for q in common],
                                      n_resamples, seed) if common else None)
            rows.append(Delta(p, m, mean_a, mean_b, comparison))
    tested = [r for r in rows if r.comparison is not None]
    adjusted = dict(zip(map(id, tested), sig.with_holm([r.comparison for r in tested])))
    return [Delta(r.pipeline, r.measure, r.a, r.b, adjusted.get(id(r))) for r in rows]


def _environment_changes(a: Results, b: Results) -> list[tuple[str, str, str]]:
    def flat(meta: dict) -> dict[str, str]:
        env = meta.get("environment") or {}
        out = {k: str(meta.get(k)) for k in ("git_commit", "git_dirty", "config_hash")}
        out.update({f"environment.{k}": str(v) for k, v in env.items() if k != "packages"})
        out.update({f"package {k}": str(v) for k, v in (env.get("packages") or {}).items()})
        checksums = (meta.get("dataset") or {}).get("checksums") or {}
        out.update({f"dataset checksum {k}": str(v) for k, v in checksums.items()})
        return out
    fa, fb = flat(a.metadata), flat(b.metadata)
    return [(k, fa.get(k, "—"), fb.get(k, "—")) for k in dict.fromkeys([*fa, *fb])
            if fa.get(k) != fb.get(k)]


def build_comparison(a_dir, b_dir, out_dir=None,
                     n_resamples: int = sig.DEFAULT_PERMUTATION_RESAMPLES,
                     seed: int = sig.DEFAULT_SEED) -> Path:
    a, b = load_results(a_dir), load_results(b_dir)
    out = (Path(out_dir) if out_dir is not None
           else DEFAULT_REPORTS_DIR / f"{a.run_name}-vs-{b.run_name}")
    rows = deltas(a, b, n_resamples, seed)
    measures = list(dict.fromkeys(r.measure for r in rows))
    grid: dict[str, dict[str, Delta]] = {}
    for r in rows:
        grid.setdefault(r.pipeline, {})[r.measure] = r
    atomic.write_text(out / "summary.csv", _csv(rows))
    atomic.write_text(out / "summary.md", _markdown(a, b, rows))
    atomic.write_text(out / "index.html", render(
        "compare.html.j2", name_a=a.run_name, name_b=b.run_name, measures=measures, grid=grid,
        rows=rows, n_resamples=n_resamples, changes=_environment_changes(a, b)))
    return out / "index.html"


def _csv(rows: list[Delta]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["pipeline", "measure", "a", "b", "delta", "n_queries", "p_t_test_holm",
                     "p_randomisation_holm"])
    for r in rows:
        c = r.comparison
        writer.writerow([r.pipeline, r.measure, *("" if v is None else repr(v)
                                                  for v in (r.a, r.b, r.delta)),
                         c.n_queries if c else "", repr(c.p_t_test_holm) if c else "",
                         repr(c.p_randomisation_holm) if c else ""])
    return buffer.getvalue()


def _markdown(a: Results, b: Results, rows: list[Delta]) -> str:
    body = [[r.pipeline, r.measure, fmt.value(r.a), fmt.value(r.b), fmt.signed(r.delta),
             fmt.p_value(r.comparison.p_randomisation_holm) if r.comparison else ""]
            for r in rows]
    return (f"# {a.run_name} (A) vs {b.run_name} (B)\n\nΔ = B − A; p: paired randomisation test, "
            "Holm-adjusted.\n\n"
            + markdown.table(["pipeline", "measure", "A", "B", "Δ", "p (Holm)"], body))
