"""`harness report A B`: two results folders side by side (e.g. before/after a change).

For each pipeline × measure in either folder: A's mean, B's mean, Δ = B − A and the paired tests
(Holm-adjusted over the table), all over the same queries: those both folders have per-query values
for. Where the folders judged different queries, the means are over the common ones (not the
folders' own metrics.csv means) and the report says how many are common and only in A / only in B.
Without per-query values on one side nothing can be paired: Δ is then the difference of the
folders' overall means, untested, and says so.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from harness.storage import atomic
from harness.evaluation import significance as sig
from harness.reports import markdown
from harness.reports import formatting as fmt
from harness.reports.render import render
from harness.storage.results_folder import Results, load_results
from harness.reports.tables import comparison_notes

DEFAULT_REPORTS_DIR = Path("reports")


@dataclass(frozen=True)
class Delta:
    pipeline: str
    measure: str
    a: Optional[float]       # A's mean over the compared queries (see the module docstring)
    b: Optional[float]
    delta: Optional[float]   # b - a; None where the two cannot be compared
    comparison: Optional[sig.Comparison]   # paired B vs A over common queries
    notes: tuple[str, ...] = ()


def _delta(pipeline: str, measure: str, a: Results, b: Results, n_resamples: int,
           seed: int) -> Optional[Delta]:
    mean_a = a.metrics.get(pipeline, {}).get(measure)
    mean_b = b.metrics.get(pipeline, {}).get(measure)
    if mean_a is None or mean_b is None:
        return None if mean_a is None and mean_b is None else Delta(
            pipeline, measure, mean_a, mean_b, None, None)
    qa = a.per_query.get(pipeline, {}).get(measure, {})
    qb = b.per_query.get(pipeline, {}).get(measure, {})
    if not qa or not qb:
        lacking = " and ".join(name for name, q in (("A", qa), ("B", qb)) if not q)
        return Delta(pipeline, measure, mean_a, mean_b, mean_b - mean_a, None, (
            f"no per-query values in {lacking}: Δ of the folders' overall means, queries not "
            "matched, no test",))
    c = sig.compare_by_query(qb, qa, n_resamples, seed)   # B as `a`: Δ = B − A
    if c is None:
        return Delta(pipeline, measure, mean_a, mean_b, None, None, (
            f"no common queries ({len(qa)} only in A, {len(qb)} only in B): no Δ",))
    return Delta(pipeline, measure, c.mean_b, c.mean_a, c.delta, c,
                 tuple(comparison_notes(c, "B", "A")))


def deltas(a: Results, b: Results, n_resamples: int, seed: int) -> list[Delta]:
    pipelines = list(dict.fromkeys([*a.metrics, *b.metrics]))
    measures = list(dict.fromkeys([*a.measures, *b.measures]))
    found = (_delta(p, m, a, b, n_resamples, seed) for p in pipelines for m in measures)
    rows = [r for r in found if r is not None]
    tested = [r for r in rows if r.comparison is not None]
    adjusted = dict(zip(map(id, tested), sig.with_holm([r.comparison for r in tested])))
    return [replace(r, comparison=adjusted[id(r)]) if id(r) in adjusted else r for r in rows]


def query_sets(rows: list[Delta]) -> list[str]:
    """The page-level note on which queries were compared: one line per distinct pairing."""
    groups: dict[tuple[int, int, int], list[str]] = {}
    for r in rows:
        if r.comparison is not None:
            c = r.comparison   # its a is B, its b is A
            groups.setdefault((c.n_queries, c.only_b, c.only_a), []).append(r.pipeline)
    if len(groups) == 1:
        ((common, only_a, only_b),) = groups
        if not (only_a or only_b):
            return [f"Both folders have the same {common} queries with per-query values; means, "
                    "Δ and p are over them."]
        return [f"The query sets differ: {common} queries are in both folders, {only_a} only in "
                f"A, {only_b} only in B. Means, Δ and p are over the {common} common queries, "
                "so the means are not the folders' own metrics.csv means."]
    return [f"{', '.join(dict.fromkeys(pipelines))}: {common} common queries, {only_a} only in A, "
            f"{only_b} only in B (means, Δ and p over the common ones)."
            for (common, only_a, only_b), pipelines in groups.items()]


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
    notes = query_sets(rows)
    measures = list(dict.fromkeys(r.measure for r in rows))
    grid: dict[str, dict[str, Delta]] = {}
    for r in rows:
        grid.setdefault(r.pipeline, {})[r.measure] = r
    atomic.write_text(out / "summary.csv", _csv(rows))
    atomic.write_text(out / "summary.md", _markdown(a, b, rows, notes))
    atomic.write_text(out / "index.html", render(
        "compare.html.j2", name_a=a.run_name, name_b=b.run_name, measures=measures, grid=grid,
        rows=rows, query_notes=notes, n_resamples=n_resamples,
        changes=_environment_changes(a, b)))
    return out / "index.html"


CSV_COLUMNS = ("pipeline", "measure", "a", "b", "delta", "n_queries", "only_in_a", "only_in_b",
               "p_t_test", "p_t_test_holm", "p_randomisation", "p_randomisation_holm", "note")


def _csv(rows: list[Delta]) -> str:
    """One row per pipeline × measure, full precision; blank where not applicable."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        c = r.comparison
        tested = ([c.n_queries, c.only_b, c.only_a, repr(c.p_t_test), repr(c.p_t_test_holm),
                   repr(c.p_randomisation), repr(c.p_randomisation_holm)] if c else [""] * 7)
        writer.writerow([r.pipeline, r.measure, *("" if v is None else repr(v)
                                                  for v in (r.a, r.b, r.delta)),
                         *tested, "; ".join(r.notes)])
    return buffer.getvalue()


def _markdown(a: Results, b: Results, rows: list[Delta], notes: list[str]) -> str:
    body = [[r.pipeline, r.measure, fmt.value(r.a), fmt.value(r.b), fmt.signed(r.delta),
             r.comparison.n_queries if r.comparison else "",
             fmt.p_value(r.comparison.p_randomisation_holm) if r.comparison else "",
             "; ".join(r.notes)]
            for r in rows]
    return (f"# {a.run_name} (A) vs {b.run_name} (B)\n\nΔ = B − A; p: paired randomisation test, "
            "Holm-adjusted.\n\n" + "".join(f"{n}\n\n" for n in notes)
            + markdown.table(["pipeline", "measure", "A", "B", "Δ", "queries", "p (Holm)", "note"],
                             body))
