import csv
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness import config as config_mod
from harness.execution.benchmark import run_benchmark
from harness.config import Config
from harness.core.errors import ConfigError, DataError
from harness.evaluation import significance as sig
from harness.evaluation.metrics import evaluate, parse_measures
from harness.reports import build_report
from harness.reports.attribution import attribute
from harness.reports.cli import report_command
from harness.reports.report import models_text
from harness.reports.svg import Point, pareto_front
from harness.reports.synthetic import write_results
from harness.storage.results_folder import PipelineInfo, ResultsWriter, load_results
from harness.core.types import Dataset, Document
from tiny_models import tiny_sentence_transformer


class _Collector(HTMLParser):
    """Leaderboard cells (`tr[data-pipeline] td[data-measure][data-value]`), attribution counts,
    drill-down pairs (`section#drilldown details`) and every table's header and cell texts."""

    def __init__(self):
        super().__init__()
        self.leaderboard, self.attribution, self.pairs, self.tables = {}, {}, {}, []
        self.sections: list[str] = []
        self._pipeline = self._table = self._category = self._pair = self._text = None
        self._cell = 0
        self.root = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.root = a
        if tag == "section" and a.get("id"):
            self.sections.append(a["id"])
        if tag == "table":
            self._table = a.get("id") or (a.get("data-pipeline") and ("attr", a["data-pipeline"]))
            self.tables.append({"header": [], "rows": []})
        if tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        if tag in ("th", "td", "summary", "p"):
            self._text = []
        if tag == "tr" and self._table == "leaderboard-table" and "data-pipeline" in a:
            self._pipeline = a["data-pipeline"]
        if tag == "td" and self._pipeline and "data-value" in a:
            self.leaderboard.setdefault(self._pipeline, {})[a["data-measure"]] = \
                (float(a["data-value"]), "best" in (a.get("class") or ""))
        if tag == "tr" and isinstance(self._table, tuple) and "data-category" in a:
            self._category, self._cell = a["data-category"], 0
        if tag == "td" and self._category:
            self._cell += 1
        if self.sections[-1:] == ["drilldown"]:
            if tag == "details":
                self._pair = {"queries": 0, "hits": 0, "notes": []}
            if tag == "h3" and self._pair is not None:
                self._pair["queries"] += 1
            if tag == "li" and self._pair is not None:
                self._pair["hits"] += 1

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)
        if self._category and self._cell == 2 and data.strip():
            self.attribution.setdefault(self._table[1], {})[self._category] = int(data)

    def handle_endtag(self, tag):
        text = "".join(self._text or []).strip()
        if tag in ("th", "td") and self.tables and self._text is not None:
            table = self.tables[-1]
            (table["header"] if tag == "th" else table["rows"][-1]).append(text)
        if tag == "summary" and self._pair is not None:
            self.pairs[text.rsplit(" (", 1)[0]] = self._pair  # "A → B (n queries)"
        if tag == "p" and self._pair is not None:
            self._pair["notes"].append(text)
        if tag in ("th", "td", "summary", "p"):
            self._text = None
        if tag == "tr":
            self._pipeline = self._category = None
        if tag == "table":
            self._table = None
        if tag == "details":
            self._pair = None

    def table(self, header: list[str]) -> dict[str, list[str]]:
        """Rows (first cell -> the others) of the table whose header is `header`."""
        found = [t for t in self.tables if t["header"] == header]
        assert len(found) == 1, [t["header"] for t in self.tables]
        return {row[0]: row[1:] for row in found[0]["rows"] if row}


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
    for name in ("bm25>>ce@100", "dense/hnsw[M=16,ef=64]", "## Significance", "## Cost",
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
    """bm25 and bm25>>ce@13 over 3 queries, cut 10: q1 missed, q2 demoted, q3 promoted; written
    through the runner's writer, with the metadata entries the runner writes."""
    qrels = {"q1": {"r": 1}, "q2": {"r": 1}, "q3": {"r": 1}}
    filler = [f"f{i}" for i in range(13)]

    def run_of(order):
        return {d: float(100 - i) for i, d in enumerate(order)}

    first = {"q1": run_of([*filler, "r"]),            # r at rank 14: below the depth of 13
             "q2": run_of(["r", *filler[:12]]), "q3": run_of([*filler[:11], "r"])}
    reranked = {"q1": run_of(filler[::-1]), "q2": run_of([*filler[:11], "r"]),
                "q3": run_of(["r", *filler[:12]])}
    runs = {"bm25": first, "bm25>>ce@13": reranked}
    writer = ResultsWriter(path)
    writer.config(Config.model_validate({
        "name": "two-stage", "dataset": {"name": "tiny"}, "pipelines": [
            {"name": "bm25", "retriever": {"type": "bm25"},
             "rerank": {"type": "ce", "depth": 13}}]}))
    writer.metrics({name: evaluate(qrels, run, parse_measures(["RR@1"]))
                    for name, run in runs.items()})
    writer.timings([])
    writer.dataset_files(Dataset("tiny", "test", {d: Document(d, "", d) for d in ["r", *filler]},
                                 {q: q for q in qrels}, qrels), runs)
    entry = {"status": "ok", "reason": None, "kind": "lucene-bm25", "parent": None,
             "sweep": None, "rerank_depth": None, "stages": ["retriever:bm25"]}
    writer.metadata({"run_name": "two-stage", "pipelines": {
        "bm25": {**entry, "run_file": writer.run("bm25", first)},
        "bm25>>ce@13": {**entry, "kind": "rerank", "parent": "bm25", "rerank_depth": 13,
                        "stages": ["retriever:bm25", "reranker:ce@13"],
                        "run_file": writer.run("bm25>>ce@13", reranked)}}})
    return path


def test_attribution_end_to_end_from_a_results_folder(tmp_path):
    folder = _write_two_stage_folder(tmp_path / "res")
    html = build_report(folder, tmp_path / "rep").read_text()
    counts = parse(html).attribution["bm25>>ce@13"]
    assert counts == {"retrieval miss": 1, "rerank demotion": 1, "promoted": 1, "unchanged": 1}


def test_a_run_file_missing_from_the_folder_is_named_in_the_report(tmp_path):
    folder = _write_two_stage_folder(tmp_path / "res")
    (folder / load_results(folder).pipelines["bm25>>ce@13"].run_file).unlink()
    page = parse(build_report(folder, tmp_path / "rep").read_text())
    assert "bm25>>ce@13" not in page.attribution
    note = "No run file for bm25>>ce@13 (runs/bm25_ce_13-"
    assert any(n.startswith(note) for n in page.pairs["bm25 → bm25>>ce@13"]["notes"])


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
    with pytest.raises(DataError, match=r"metrics.csv:\d+: value 'oops' is not a number"):
        build_report(folder, tmp_path / "rep")
    with open(folder / "metrics.csv", "w") as fh:
        fh.write("pipeline,measure,value\nrrf(a,b),P@5,0.5\n")  # unquoted comma: 4 fields
    with pytest.raises(DataError, match=r"metrics.csv:2: expected 3 columns"):
        build_report(folder, tmp_path / "rep")
    with open(folder / "metrics.csv", "w") as fh:
        fh.write("pipeline,measure,value\nbm25,P@5,0.5\nrrf,P@5,0.5\n")
    with pytest.raises(DataError, match=r"metrics.csv:3: pipeline 'rrf' is not in metadata.json"):
        build_report(folder, tmp_path / "rep")
    (folder / "metrics.csv").unlink()
    with pytest.raises(DataError, match="metrics.csv: cannot read"):
        build_report(folder, tmp_path / "rep")


@pytest.mark.parametrize("table, row, message", [
    ("timings.csv", "bm25,total,single,p95_ms,nan\n", "value 'nan' is not a number"),
    ("per_query.csv", "bm25,q0,nDCG@10,0.5\n", "repeated row bm25,q0,nDCG@10 (first on line"),
    ("per_query.csv", "colbert-plaid,q0,nDCG@10,0.5\n", "pipeline 'colbert-plaid' has status "
                                                        "'failed' in metadata.json"),
    ("queries.tsv", "q0 without a tab\n", "expected 'query-id<TAB>text'"),
])
def test_every_table_of_the_report_is_read_strictly(results, tmp_path, table, row, message):
    folder = tmp_path / "res"
    shutil.copytree(results, folder)
    lines = (folder / table).read_text().count("\n")
    with open(folder / table, "a") as fh:
        fh.write(row)
    with pytest.raises(DataError, match=re.escape(f"{table}:{lines + 1}: {message}")):
        build_report(folder, tmp_path / "rep")


def test_models_column_shows_what_metadata_records():
    minilm = {"name": "sentence-transformers/all-MiniLM-L6-v2", "fingerprint": "ab12"}
    dense = PipelineInfo("dense", stages=("retriever:dense",),
                         models={"retriever:dense": {"model": minilm}})
    assert models_text(dense) == "retriever:dense: model=sentence-transformers/all-MiniLM-L6-v2"
    dpr = PipelineInfo("dpr", models={"retriever:dpr": {"question_model": {"name": "q"},
                                                        "context_model": {"name": "c"}}})
    assert models_text(dpr) == "retriever:dpr: question_model=q, context_model=c"
    assert models_text(PipelineInfo("bm25", stages=("retriever:bm25",), models={})) == "none"
    # A folder from a harness that recorded no models: the stage labels name what ran.
    assert models_text(PipelineInfo("old", stages=("retriever:dense",))) == "retriever:dense"


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



# -- a real run ----------------------------------------------------------------------------------
# Every pipeline kind `harness run` writes: a first stage, a rerank at two depths, an ANN sweep of
# two points and a fusion, on the bundled SciFact slice. The report must find every run the
# runner wrote (under the names it gives them) and show what metadata.json records.

@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("real")
    model = str(tiny_sentence_transformer(work / "tiny-st"))
    cfg = config_mod.validate({
        "name": "real", "k": 20, "isolation": "none", "measures": ["nDCG@10", "R@10"],
        "dataset": {"name": "scifact", "split": "test",
                    "slice": {"queries": 10, "extra_docs": 100}},
        "timing": {"latency_queries": 3, "warmup": 1},
        "pipelines": [
            {"name": "bm25s", "retriever": {"type": "bm25s"},
             "rerank": {"type": "oracle", "depth": [5, 20]}},
            {"name": "dense", "retriever": {"type": "dense", "model": model, "index": {
                "type": "hnsw", "build": {"M": 8}, "search": {"ef": [20, 40]}}}},
            {"name": "rrf", "fuse": {"type": "rrf",
                                     "inputs": ["bm25s", "dense/hnsw[M=8,ef=20]"]}}]})
    return run_benchmark(cfg, work / "results", cache_dir=work / "cache", progress=False).out_dir


@pytest.fixture(scope="module")
def real_report(real_run, tmp_path_factory):
    return build_report(real_run, tmp_path_factory.mktemp("real-report") / "out")


def _two_stage(results_dir) -> list[str]:
    """Reranked pipelines, from metadata.json as the runner writes it."""
    results = load_results(results_dir)
    names = [n for n, info in results.pipelines.items() if info.parent]
    assert sorted(names) == ["bm25s>>oracle@20", "bm25s>>oracle@5"]
    return names


def assert_report_shows_every_run(page: _Collector, results_dir) -> None:
    results = load_results(results_dir)
    assert {"drilldown", "attribution"} <= set(page.sections)
    # The drill-down: the baseline against every other pipeline, each with its runs found.
    assert set(page.pairs) == {f"bm25s → {p}" for p in results.metrics if p != "bm25s"}
    for pair, view in page.pairs.items():
        assert not any(n.startswith("No run file") for n in view["notes"]), pair
        assert view["queries"] == 0 or view["hits"] > 0, pair
    for name in _two_stage(results_dir):
        view = page.pairs[f"bm25s → {name}"]
        assert view["queries"] > 0 and view["hits"] > 0, name
        counts = page.attribution[name]
        assert set(counts) == {"retrieval miss", "rerank demotion", "promoted", "unchanged"}
        assert sum(counts.values()) > 0, name
    # The models column: what metadata.json records, non-empty wherever a stage loads a model.
    models = {name: cells[-1] for name, cells in
              page.table(["pipeline", "status", "stages", "models"]).items()}
    assert models == {name: models_text(info) for name, info in results.pipelines.items()}
    model = results.config()["pipelines"][1]["retriever"]["model"]
    for name, info in results.pipelines.items():
        if "retriever:dense" in info.stages:  # the two sweep points and the fusion
            assert f"retriever:dense{'.2' if name == 'rrf' else ''}: model={model}" == models[name]
        else:
            assert models[name] == "none", name  # BM25 and the oracle load no model


def test_real_run_report_has_drilldown_attribution_and_models(real_run, real_report):
    html = real_report.read_text()
    assert "not found under runs/" not in html and "No run file" not in html
    assert_report_shows_every_run(parse(html), real_run)


def test_real_run_pipelines_stages_and_stats_appear_without_changes(real_run, real_report):
    page = parse(real_report.read_text())
    expected = {}
    for row in read_csv(real_run / "metrics.csv"):
        expected.setdefault(row["pipeline"], {})[row["measure"]] = float(row["value"])
    assert {p: {m: v for m, (v, _) in c.items()} for p, c in page.leaderboard.items()} == expected
    assert "ann_recall@10" in expected["dense/hnsw[M=8,ef=40]"]
    stage_rows = {(r[0], r[1]) for t in page.tables if "mode" in t["header"] for r in t["rows"]
                  if len(r) > 1}
    # A fusion's inputs carry their position; stats the tables do not know are shown too.
    assert {("rrf", "index.1"), ("rrf", "first_stage.2"), ("rrf", "fusion"),
            ("dense/hnsw[M=8,ef=20]", "ann_search")} <= stage_rows
    assert "embedding_cache_hit" in real_report.read_text()


@pytest.mark.skipif(not _chromium(), reason="chromium is not installed (Debian: apt-get install "
                                            "chromium); .ci/run installs it")
def test_real_run_report_renders_in_headless_chromium(real_run, real_report, tmp_path):
    dom = run_chromium(_chromium(), tmp_path, "--dump-dom", real_report.resolve().as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = parse(dom.stdout)
    assert page.root.get("data-report-ready") == "1" and "data-report-error" not in page.root
    assert_report_shows_every_run(page, real_run)


def test_the_configs_baseline_is_the_reports_baseline(tmp_path):
    """`baseline:` in a config: a real run's report tests every other pipeline against it, and
    `--baseline` still overrides it; a config without it keeps its hash (the key is left out)."""
    data = {"name": "with-baseline", "k": 20, "isolation": "none", "measures": ["nDCG@10"],
            "dataset": {"name": "scifact", "split": "test",
                        "slice": {"queries": 8, "extra_docs": 50}},
            "timing": {"latency_queries": 0},
            "pipelines": [{"name": "bm25s", "retriever": {"type": "bm25s"},
                           "rerank": {"type": "oracle", "depth": 5}}]}
    assert "baseline" not in yaml.safe_load(config_mod.dump(config_mod.validate(data)))
    cfg = config_mod.validate({**data, "baseline": "bm25s>>oracle@5"})
    out = run_benchmark(cfg, tmp_path / "results", cache_dir=tmp_path / "cache",
                        progress=False).out_dir
    rows = read_csv(build_report(out, tmp_path / "rep").parent / "summary.csv")
    assert {r["pipeline"]: r["baseline"] for r in rows} == {"bm25s": "bm25s>>oracle@5",
                                                           "bm25s>>oracle@5": ""}
    rows = read_csv(build_report(out, tmp_path / "rep2", baseline="bm25s").parent / "summary.csv")
    assert {r["pipeline"]: r["baseline"] for r in rows} == {"bm25s": "", "bm25s>>oracle@5": "bm25s"}
    with pytest.raises(ConfigError, match=r"baseline: 'bm25' is not a pipeline of this config "
                                          r"\(pipelines: bm25s, bm25s>>oracle@5\)"):
        config_mod.validate({**data, "baseline": "bm25"})
