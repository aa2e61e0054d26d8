import csv
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.errors import DataError, HarnessError
from harness.evaluation import significance as sig
from harness.reports import build_report
from harness.reports.attribution import attribute
from harness.reports.cli import report_command
from harness.reports.svg import Point, pareto_front
from harness.reports.synthetic import write_results
from harness.trec import write_run


class _Collector(HTMLParser):
    """Leaderboard cells (`tr[data-pipeline] td[data-measure][data-value]`) and attribution rows."""

    def __init__(self):
        super().__init__()
        self.leaderboard, self.attribution = {}, {}
        self._pipeline = self._table = self._category = None
        self._cell = 0
        self.root = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.root = a
        if tag == "table":
            self._table = a.get("id") or (a.get("data-pipeline") and ("attr", a["data-pipeline"]))
        if tag == "tr" and self._table == "leaderboard-table" and "data-pipeline" in a:
            self._pipeline = a["data-pipeline"]
        if tag == "td" and self._pipeline and "data-value" in a:
            self.leaderboard.setdefault(self._pipeline, {})[a["data-measure"]] = \
                (float(a["data-value"]), "best" in (a.get("class") or ""))
        if tag == "tr" and isinstance(self._table, tuple) and "data-category" in a:
            self._category, self._cell = a["data-category"], 0
        if tag == "td" and self._category:
            self._cell += 1

    def handle_data(self, data):
        if self._category and self._cell == 2 and data.strip():
            self.attribution.setdefault(self._table[1], {})[self._category] = int(data)

    def handle_endtag(self, tag):
        if tag == "tr":
            self._pipeline = self._category = None
        if tag == "table":
            self._table = None


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return write_results(tmp_path_factory.mktemp("run") / "results", n_queries=30, n_docs=300)


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    return build_report(results, tmp_path_factory.mktemp("report") / "out")


def test_files_are_written_and_html_is_self_contained(report):
    assert {p.name for p in report.parent.iterdir()} == {"index.html", "summary.csv", "summary.md"}
    html = report.read_text()
    for external in ("<link", " src=", "href=\"http", "@import", "url("):
        assert external not in html
    assert html.count("<svg") == 3  # ANN Pareto, quality vs latency, quality vs depth
    assert "colbert-plaid" in html and "timeout after 600 s" in html


def test_leaderboard_matches_metrics_csv_and_marks_best(results, report):
    expected = {}
    for row in read_csv(results / "metrics.csv"):
        expected.setdefault(row["pipeline"], {})[row["measure"]] = float(row["value"])
    cells = parse(report.read_text()).leaderboard
    assert {p: {m: v for m, (v, _) in c.items()} for p, c in cells.items()} == expected
    for measure in ("nDCG@10", "ann_recall@10"):
        best = max((v[measure], p) for p, v in expected.items() if measure in v)[1]
        assert [p for p, c in cells.items() if measure in c and c[measure][1]] == [best]


def test_summary_csv_numbers_equal_direct_computation(results, report):
    per_query = {}
    for row in read_csv(results / "per_query.csv"):
        per_query.setdefault((row["pipeline"], row["measure"]), {})[row["qid"]] = float(row["value"])
    rows = {(r["pipeline"], r["measure"]): r for r in read_csv(report.parent / "summary.csv")}
    dense = rows[("dense-minilm", "nDCG@10")]
    values = list(per_query[("dense-minilm", "nDCG@10")].values())
    assert (float(dense["ci_low"]), float(dense["ci_high"])) == sig.bootstrap_ci(values)
    base = per_query[("bm25", "nDCG@10")]
    ours = per_query[("dense-minilm", "nDCG@10")]
    qids = list(base)
    expected = sig.compare([ours[q] for q in qids], [base[q] for q in qids])
    assert dense["baseline"] == "bm25"
    assert float(dense["p_t_test"]) == expected.p_t_test
    assert float(dense["p_randomisation"]) == expected.p_randomisation
    assert (int(dense["wins"]), int(dense["ties"]), int(dense["losses"])) == \
        (expected.record.wins, expected.record.ties, expected.record.losses)
    tested = [r for r in rows.values() if r["p_t_test"]]
    holm = sig.holm([float(r["p_t_test"]) for r in tested])
    assert [float(r["p_t_test_holm"]) for r in tested] == pytest.approx(holm)
    assert rows[("bm25", "nDCG@10")]["p_t_test"] == ""  # the baseline is not tested against itself


def test_markdown_summary_has_every_pipeline_and_section(results, report):
    md = (report.parent / "summary.md").read_text()
    for name in ("bm25>>ce@100", "hnsw-M16-ef64", "## Significance", "## Cost",
                 "## Failure attribution", "colbert-plaid"):
        assert name in md


def test_pareto_front_on_a_hand_made_case():
    pts = [Point(0.8, 2000, "a", "s"), Point(0.9, 1500, "b", "s"), Point(0.85, 1000, "c", "s"),
           Point(0.99, 300, "d", "s"), Point(0.9, 900, "e", "s")]
    assert [p.label for p in pareto_front(pts, minimize_x=False)] == ["a", "b", "d"]
    latency = [Point(1, 0.3, "fast", "s"), Point(5, 0.5, "mid", "s"), Point(9, 0.4, "slow", "s")]
    assert [p.label for p in pareto_front(latency, minimize_x=True)] == ["fast", "mid"]


def test_attribution_known_outcomes():
    qrels = {"miss": {"r1": 1, "r2": 1}, "demote": {"r": 2}, "promote": {"r": 1},
             "same": {"r": 1}, "mixed": {"a": 1, "b": 1}, "none": {"x": 0}}
    filler = [f"f{i}" for i in range(15)]

    def run_of(order):  # docs in rank order -> scores
        return {d: float(100 - i) for i, d in enumerate(order)}

    first = {"miss": run_of(["r1", *filler]),                       # r2 never retrieved
             "demote": run_of(["r", *filler]), "promote": run_of([*filler[:12], "r"]),
             "same": run_of([*filler[:3], "r", *filler[3:]]),
             "mixed": run_of(["a", *filler[:11], "b"]), "none": run_of(filler)}
    reranked = {"miss": run_of(["r1", *filler[:12]]),
                "demote": run_of([*filler[:10], "r"]), "promote": run_of(["r", *filler[:12]]),
                "same": run_of(["r", *filler[:12]]),
                "mixed": run_of(["b", *filler[:10], "a"]), "none": run_of(filler[:13])}
    result = attribute("fs>>ce@13", "fs", qrels, first, reranked, depth=13)
    assert result.queries_by_category() == {
        "retrieval miss": ["miss"], "rerank demotion": ["demote", "mixed"],
        "promoted": ["promote", "mixed"], "unchanged": ["miss", "same"]}
    assert result.without_relevant == ["none"]
    # The depth matters: "promote" had r at first-stage rank 13, outside a depth of 12.
    shallow = attribute("fs>>ce@12", "fs", qrels, first, reranked, depth=12)
    assert "promote" in shallow.queries_by_category()["retrieval miss"]


def _write_two_stage_folder(path: Path) -> Path:
    """bm25 and bm25>>ce@13 over 3 queries, cut 10: q1 missed, q2 demoted, q3 promoted."""
    qrels = {"q1": {"r": 1}, "q2": {"r": 1}, "q3": {"r": 1}}
    filler = [f"f{i}" for i in range(13)]

    def run_of(order):
        return {d: float(100 - i) for i, d in enumerate(order)}

    first = {"q1": run_of([*filler, "r"]),            # r at rank 14: below the depth of 13
             "q2": run_of(["r", *filler[:12]]), "q3": run_of([*filler[:11], "r"])}
    reranked = {"q1": run_of(filler[::-1]), "q2": run_of([*filler[:11], "r"]),
                "q3": run_of(["r", *filler[:12]])}
    write_run(path / "runs" / "bm25.trec", first, "bm25")
    write_run(path / "runs" / "rr.trec", reranked, "bm25>>ce@13")
    lines = ["pipeline,qid,measure,value"]
    lines += [f"{p},{q},RR@1,{v}" for p, run in (("bm25", first), ("bm25>>ce@13", reranked))
              for q in qrels for v in [1.0 if max(run[q], key=run[q].get) == "r" else 0.0]]
    (path / "per_query.csv").write_text("\n".join(lines) + "\n")
    (path / "metrics.csv").write_text("pipeline,measure,value\nbm25,RR@1,0.3333333333333333\n"
                                      "bm25>>ce@13,RR@1,0.3333333333333333\n")
    (path / "metadata.json").write_text(json.dumps({"run_name": "two-stage", "pipelines": {
        "bm25": {"status": "ok", "stages": ["retriever:bm25"]},
        "bm25>>ce@13": {"status": "ok", "stages": ["retriever:bm25", "reranker:ce@13"]}}}))
    (path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                    "".join(f"{q}\tr\t1\n" for q in qrels))
    return path


def test_attribution_end_to_end_from_a_results_folder(tmp_path):
    # No `parent` in metadata: it comes from the runner's naming rule, the depth from the stage.
    folder = _write_two_stage_folder(tmp_path / "res")
    html = build_report(folder, tmp_path / "rep").read_text()
    counts = parse(html).attribution["bm25>>ce@13"]
    assert counts == {"retrieval miss": 1, "rerank demotion": 1, "promoted": 1, "unchanged": 1}


def test_new_pipeline_kinds_and_measures_appear_without_changes(results, tmp_path):
    folder = tmp_path / "res"
    shutil.copytree(results, folder)
    with open(folder / "metrics.csv", "a") as fh:
        fh.write('"rrf(bm25,dense-minilm)",nDCG@10,0.9\n"rrf(bm25,dense-minilm)",P@5,0.25\n')
    with open(folder / "timings.csv", "a") as fh:
        fh.write('"rrf(bm25,dense-minilm)",fusion,single,p95_ms,0.7\n'
                 '"rrf(bm25,dense-minilm)",total,single,p95_ms,12.5\n'
                 '"rrf(bm25,dense-minilm)",fusion,single,gpu_util_pct,40\n')
    html = build_report(folder, tmp_path / "rep").read_text()
    cells = parse(html).leaderboard["rrf(bm25,dense-minilm)"]
    assert cells["nDCG@10"] == (0.9, True) and cells["P@5"] == (0.25, True)
    assert "gpu_util_pct" in html and "fusion" in html


def test_compare_two_folders_shows_deltas(results, tmp_path):
    other = write_results(tmp_path / "b", n_queries=30, n_docs=300, seed=1, run_name="after")
    index = build_report(results, tmp_path / "cmp", compare_to=other)
    rows = {(r["pipeline"], r["measure"]): r for r in read_csv(index.parent / "summary.csv")}
    a = {(r["pipeline"], r["measure"]): float(r["value"]) for r in read_csv(results / "metrics.csv")}
    b = {(r["pipeline"], r["measure"]): float(r["value"]) for r in read_csv(other / "metrics.csv")}
    row = rows[("bm25", "nDCG@10")]
    assert float(row["delta"]) == pytest.approx(b[("bm25", "nDCG@10")] - a[("bm25", "nDCG@10")])
    assert row["p_randomisation_holm"] != ""
    assert 'data-pipeline="bm25"' in index.read_text()


def test_cli_success_and_errors(results, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(report_command, [str(results), "--out", str(tmp_path / "r"),
                                        "--baseline", "dense-minilm", "--pair", "bm25",
                                        "bm25>>ce@20"])
    assert ok.exit_code == 0, ok.output
    assert "bm25 → bm25&gt;&gt;ce@20" in (tmp_path / "r" / "index.html").read_text()
    missing = runner.invoke(report_command, [str(tmp_path / "nope")])
    assert missing.exit_code == 1 and missing.output.startswith("error: ")
    bad = runner.invoke(report_command, [str(results), "--baseline", "nope",
                                         "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "baseline 'nope' has no metrics" in bad.output


def test_malformed_tables_name_file_and_line(results, tmp_path):
    folder = tmp_path / "res"
    shutil.copytree(results, folder)
    with open(folder / "metrics.csv", "a") as fh:
        fh.write("bm25,P@5,oops\n")
    with pytest.raises(DataError, match=r"metrics.csv:\d+: 'oops' is not a number"):
        build_report(folder, tmp_path / "rep")
    with open(folder / "metrics.csv", "w") as fh:
        fh.write("pipeline,measure,value\nrrf(a,b),P@5,0.5\n")  # unquoted comma: 4 fields
    with pytest.raises(DataError, match=r"metrics.csv:2: expected 3 columns"):
        build_report(folder, tmp_path / "rep")
    (folder / "metrics.csv").unlink()
    with pytest.raises(HarnessError, match="metrics.csv is missing"):
        build_report(folder, tmp_path / "rep")


def _chromium():
    return shutil.which("chromium") or (Path("/usr/bin/chromium").exists() and "/usr/bin/chromium")


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--enable-logging=stderr", "--v=0")


def run_chromium(binary, tmp_path, *args):
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(tmp_path)})


@pytest.mark.skipif(not _chromium(), reason="chromium is not installed (Debian: apt-get install "
                                            "chromium); .ci/run installs it")
def test_report_opens_in_headless_chromium(results, report, tmp_path):
    binary = _chromium()
    url = report.resolve().as_uri()
    dom = run_chromium(binary, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = parse(dom.stdout)
    # The inline script sets this as its last statement, and a window error handler sets
    # data-report-error: together they say the page's JavaScript ran without an error.
    assert page.root.get("data-report-ready") == "1"
    assert "data-report-error" not in page.root
    console_errors = [line for line in dom.stderr.splitlines()
                      if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert console_errors == []
    expected = {}
    for row in read_csv(results / "metrics.csv"):
        expected.setdefault(row["pipeline"], {})[row["measure"]] = float(row["value"])
    assert {p: {m: v for m, (v, _) in c.items()} for p, c in page.leaderboard.items()} == expected
    shot = tmp_path / "report.png"
    run_chromium(binary, tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", url)
    assert shot.exists() and shot.stat().st_size > 10_000

