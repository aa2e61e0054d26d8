"""Published reference results (`make reference`): run the shipped offline configs, keep their
small result files in results/<config>/, render reports/<config>/, and write the README's
reproduction tables from those files.

Each config runs from scratch into build/reference/<config>/ (run files and saved nodes stay
there, untracked); nothing is published unless every run succeeds. Runs happen before any
tracked file changes, so metadata.json's `git_dirty` describes the code, not the previous
reference results.

    .venv/bin/python benchmarks/reference.py                        # all configs, then the table
    .venv/bin/python benchmarks/reference.py --configs ci-smoke     # some configs, then the table
    .venv/bin/python benchmarks/reference.py --table-only           # README tables from results/
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from harness.storage.results_folder import layout as L, load_results

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("quickstart", "scifact-bm25", "scifact-ann", "cloud-faq", "ci-smoke")
# What a reference folder publishes: everything but run files, saved nodes and the dataset
# side files (qrels, queries, titles), which the rendered report already shows.
KEPT = (L.CONFIG, L.METADATA, L.METRICS, L.PER_QUERY, L.TIMINGS, L.PARETO)
STAGING = ROOT / "build" / "reference"
RESULTS, REPORTS, README = ROOT / "results", ROOT / "reports", ROOT / "README.md"
BEGIN, END = "<!-- reference:begin -->", "<!-- reference:end -->"


def run(name: str) -> Path:
    out = STAGING / name
    shutil.rmtree(out, ignore_errors=True)  # a fresh measurement, never a resumed one
    subprocess.run([sys.executable, "-m", "harness.cli", "run", f"configs/{name}.yaml",
                    "--out", str(out), "--no-report"], cwd=ROOT, check=True)
    return out


def publish(name: str, staged: Path) -> None:
    from harness.reports import build_report
    dest = RESULTS / name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for file in KEPT:
        shutil.copy2(staged / file, dest / file)
    build_report(staged, REPORTS / name)  # from the staged folder: its runs feed the drill-down


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def config_table(name: str) -> str:
    """One config's Markdown block: provenance line, then pipeline x measure (4 decimals)."""
    res = load_results(RESULTS / name)
    meta, env, data = res.metadata, res.metadata["environment"], res.metadata["dataset"]
    commit = (meta.get("git_commit") or "unknown")[:7] + (" (dirty)" if meta.get("git_dirty") else "")
    expect = {p["name"]: p.get("expect") or {} for p in res.config()["pipelines"]}
    ann = any(p.sweep for p in res.pipelines.values())
    header = ["pipeline", *res.measures, "p95 ms"] + (["search q/s"] if ann else []) + ["expected"]
    lines = [f"**{name}**: `harness run configs/{name}.yaml`; {data['name']} {data['split']}, "
             f"{data['n_queries']:,} queries, {data['n_docs']:,} documents; {env['cpu']}, "
             f"{env['cores']} cores, threads {env['threads']}, {env['device']}; "
             f"{meta['created_utc'][:10]}, commit {commit}; "
             f"[report](reports/{name}/index.html)", "",
             "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for pipeline, values in res.metrics.items():
        row = [f"`{pipeline}`", *(_fmt(values.get(m)) for m in res.measures),
               f"{res.timing(pipeline, L.TOTAL, L.SINGLE, L.P95_MS):.2f}"]
        if ann:
            qps = res.timing(pipeline, L.ANN_SEARCH, L.SINGLE, L.QPS)
            row.append("–" if qps is None else f"{qps:,.0f}")
        row.append(", ".join(f"{m} {v}" for m, v in expect.get(pipeline, {}).items()))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def published() -> list[str]:
    """The reference configs that have a folder in results/, in CONFIGS order."""
    return [name for name in CONFIGS if (RESULTS / name).is_dir()]


def tables() -> str:
    return "\n\n".join(config_table(name) for name in published())


def with_tables(readme: str, body: str) -> str:
    """`readme` with the text between the reference markers replaced by `body`."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{README}: needs the markers {BEGIN} ... {END}, in that order")
    return f"{readme[:start + len(BEGIN)]}\n{body}\n{readme[end:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--table-only", action="store_true",
                        help="Only rewrite the README tables from results/.")
    args = parser.parse_args()
    if not args.table_only:
        staged = {name: run(name) for name in args.configs}  # one at a time
        for name, folder in staged.items():
            publish(name, folder)
    README.write_text(with_tables(README.read_text(encoding="utf-8"), tables()), encoding="utf-8")
    print(f"README.md tables written from {', '.join(f'results/{n}' for n in published())}")


if __name__ == "__main__":
    main()
