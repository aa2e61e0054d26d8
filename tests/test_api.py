"""The Python API, used as a notebook would: a small real run (bundled SciFact slice, bm25s, the
oracle reranker, RRF; isolation none) explored through harness.run / harness.load, checked
against the files the run wrote and the report built from them."""
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import fake_plugins  # noqa: F401  (registers the fake plugins)
import harness
from harness import config as config_mod
from harness.regression.baseline import baseline_from_results, write_baseline
from harness.regression.check import PASS
from test_reports import _chromium, parse, run_chromium

CONFIG = {
    "name": "api", "k": 20, "measures": ["nDCG@10", "R@10"],
    "dataset": {"name": "scifact", "split": "test", "slice": {"queries": 30, "extra_docs": 1000}},
    "timing": {"latency_queries": 3, "warmup": 1},
    "pipelines": [
        {"name": "bm25s", "retriever": {"type": "bm25s"},
         "rerank": {"type": "oracle", "depth": 10}},
        {"name": "bm25s-k1", "retriever": {"type": "bm25s", "k1": 2.0, "b": 1.0, "stemmer": None,
                                           "stopwords": None}},
        {"name": "rrf", "fuse": {"type": "rrf", "inputs": ["bm25s", "bm25s-k1"]}}]}
ROOT = Path(__file__).resolve().parent.parent
PIPELINES = ["bm25s", "bm25s>>oracle@10", "bm25s-k1", "rrf"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("api")


@pytest.fixture(scope="module")
def results(work):
    # The config's isolation is the default (process); the override runs it in this process.
    return harness.run(CONFIG, work / "run", cache_dir=work / "cache", progress=False,
                       isolation="none")


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def rows(frame: pd.DataFrame) -> list[tuple]:
    return list(frame.itertuples(index=False, name=None))


def test_run_returns_the_tables_it_wrote(results):
    assert results.path == results.outcome.out_dir and not results.failed
    assert yaml.safe_load((results.path / "config.yaml").read_text())["isolation"] == "none"
    assert sorted(results.pipelines) == sorted(PIPELINES)
    assert rows(results.metrics) == [(r["pipeline"], r["measure"], float(r["value"]))
                                     for r in read_csv(results.path / "metrics.csv")]
    per_query = results.per_query
    assert list(per_query.columns) == ["pipeline", "qid", "measure", "value"]
    assert all(isinstance(q, str) for q in per_query["qid"])  # query ids stay strings
    written = [(r["pipeline"], r["qid"], r["measure"], float(r["value"]))
               for r in read_csv(results.path / "per_query.csv")]
    assert sorted(rows(per_query)) == sorted(written) and len(written) == 4 * 2 * 30
    assert rows(results.timings) == [(r["pipeline"], r["stage"], r["mode"], r["stat"],
                                      float(r["value"]))
                                     for r in read_csv(results.path / "timings.csv")]
    assert set(results.timings["stage"]) >= {"index", "first_stage", "rerank", "fusion", "total"}


def test_runs_are_the_run_files_ranked(results):
    meta = json.loads((results.path / "metadata.json").read_text())["pipelines"]
    assert list(results.runs) == list(results.pipelines)
    assert sorted(results.runs) == sorted(PIPELINES)
    for name in PIPELINES:
        lines = (results.path / meta[name]["run_file"]).read_text().split()
        expected = [(q, d, int(rank), float(score)) for q, _, d, rank, score, _ in
                    zip(*[iter(lines)] * 6)]
        frame = results.runs[name]
        assert list(frame.columns) == ["qid", "docid", "rank", "score"]
        assert rows(frame) == expected and len(expected) > 0
    with pytest.raises(KeyError, match="nope"):
        results.runs["nope"]


def test_load_round_trip(results):
    loaded = harness.load(results.path)
    assert loaded.outcome is None
    for table in ("metrics", "per_query", "timings"):
        pd.testing.assert_frame_equal(getattr(loaded, table), getattr(results, table))
    pd.testing.assert_frame_equal(loaded.runs["rrf"], results.runs["rrf"])
    page = loaded._repr_html_()
    assert "<table" in page and all(p.replace(">", "&gt;") in page for p in PIPELINES)
    board = loaded.leaderboard()
    assert board.loc["bm25s", "nDCG@10"] == results.folder.metrics["bm25s"]["nDCG@10"]


def typed(column: str, text: str):
    """A summary.csv cell as the value compare() holds (blank: missing)."""
    if column in ("pipeline", "measure", "baseline", "note"):
        return text or None
    if column == "best":
        return text == "1"
    return None if text == "" else float(text)


def same(a, b) -> bool:
    missing = (lambda v: v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)))
    return (missing(a) and missing(b)) or a == b


def assert_same_as_summary(frame: pd.DataFrame, summary_csv, keep=lambda row: True) -> None:
    written = [row for row in read_csv(summary_csv) if keep(row)]
    assert list(frame.columns) == list(written[0])
    assert len(frame) == len(written)
    for got, row in zip(frame.to_dict("records"), written):
        for column, text in row.items():
            assert same(got[column] if got[column] != "" else None, typed(column, text)), \
                (row["pipeline"], row["measure"], column, got[column], text)


def test_compare_is_the_reports_significance_table(results, work):
    frame = results.compare()
    assert_same_as_summary(frame, results.report(work / "report").parent / "summary.csv")
    oracle = frame[(frame.pipeline == "bm25s>>oracle@10") & (frame.measure == "nDCG@10")].iloc[0]
    assert oracle.baseline == "bm25s" and oracle.delta > 0 and oracle.wins > 0
    assert 0 < oracle.p_randomisation < oracle.p_randomisation_holm < 1
    assert frame.losses.sum() > 0 and frame.ci_low.notna().all()
    assert frame.dtypes["wins"] == "Int64" and frame.dtypes["p_t_test"] == float
    # Another baseline and one measure: the report's rows for it; Holm over the report's family.
    picked = results.compare(baseline="bm25s-k1", measures="R@10", permutations=200, seed=3)
    index = results.report(work / "report-k1", baseline="bm25s-k1", permutations=200, seed=3)
    assert_same_as_summary(picked, index.parent / "summary.csv", lambda r: r["measure"] == "R@10")
    with pytest.raises(harness.HarnessError, match="measures: MAP not in"):
        results.compare(measures=["MAP"])
    with pytest.raises(harness.HarnessError, match="baseline 'nope' has no metrics"):
        results.compare(baseline="nope")


@pytest.mark.skipif(not _chromium(), reason="chromium is not installed (Debian: apt-get install "
                                            "chromium); .ci/run installs it")
def test_report_opens_in_headless_chromium(results, work, tmp_path):
    index = results.report(work / "browser")
    assert index == work / "browser" / "index.html"
    dom = run_chromium(_chromium(), tmp_path, "--dump-dom", index.resolve().as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = parse(dom.stdout)
    assert page.root.get("data-report-ready") == "1" and "data-report-error" not in page.root
    shown = {p: {m: v for m, (v, _) in cells.items()} for p, cells in page.leaderboard.items()}
    assert shown == results.leaderboard().to_dict("index")


def test_check_against_a_baseline_of_the_run(results, work):
    baseline = work / "baseline.yaml"
    write_baseline(baseline_from_results(results.folder), baseline)
    report = results.check(baseline)
    assert report.exit_code() == 0 and len(report.checks) == len(results.metrics)
    assert {c.outcome for c in report.checks} == {PASS}
    with pytest.raises(harness.DataError, match="no pipeline has an `expect:` block"):
        results.check()


def test_dict_and_config_object_give_the_same_results(results, work):
    cfg = config_mod.validate({**CONFIG, "isolation": "none"})
    again = harness.run(cfg, work / "from-object", cache_dir=work / "cache", progress=False)
    for name in ("config.yaml", "metrics.csv", "per_query.csv"):
        assert (again.path / name).read_bytes() == (results.path / name).read_bytes(), name
    pd.testing.assert_frame_equal(again.per_query, results.per_query)


def test_bad_overrides_raise_the_yaml_paths_config_error(work, tmp_path):
    path = tmp_path / "api.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    for override, field in (({"k": 0}, "k: Input should be greater than or equal to 1"),
                            ({"kk": 3}, "kk: unknown field"),
                            ({"k": 5}, "measures[0]: nDCG@10 needs 10 results per query but k=5"),
                            ({"isolation": "thread"}, "isolation: Input should be 'process' or "
                                                      "'none'")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump({**CONFIG, **override}))
        with pytest.raises(harness.ConfigError) as from_yaml:
            config_mod.load(bad)
        for given in (path, CONFIG):
            with pytest.raises(harness.ConfigError) as from_api:
                harness.run(given, tmp_path / "never", **override)
            message = str(from_api.value)
            assert field in message and f"with overrides {next(iter(override))}" in message
            # The same field lines as the YAML file with those values gives.
            assert message.split("\n")[1:] == str(from_yaml.value).split("\n")[1:]
    with pytest.raises(harness.ConfigError, match="max_queries: expected an integer >= 1, got 0"):
        harness.run(CONFIG, tmp_path / "never", max_queries=0)
    with pytest.raises(harness.ConfigError, match="config: expected a YAML path, a mapping"):
        harness.run(42)
    assert not (tmp_path / "never").exists()  # refused before any work


def test_cli_run_is_the_api_run(tiny_beir, tmp_path):
    """`harness run` writes what harness.run writes, and exits 1 naming a failed pipeline."""
    from harness.cli import cli
    config = {"name": "t", "dataset": {"name": str(tiny_beir)}, "k": 10, "measures": ["nDCG@10"],
              "isolation": "none", "timing": {"latency_queries": 2, "warmup": 0},
              "pipelines": [{"name": "bm25s", "retriever": {"type": "bm25s", "stemmer": None}},
                            {"name": "bad", "retriever": {"type": "fake-overlap", "fail": True}}]}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "cli"),
                                      "--no-report", "--plugins", "fake_plugins"])
    assert result.exit_code == 1, result.output
    assert "1 pipeline(s) failed: bad (see metadata.json)" in result.stderr
    assert "bm25s" in result.stdout and f"results: {tmp_path / 'cli'}" in result.stdout
    api = harness.run(path, tmp_path / "api", progress=False, plugins="fake_plugins")
    assert list(api.failed) == ["bad"] and "asked to fail" in api.failed["bad"]
    for name in ("config.yaml", "metrics.csv", "per_query.csv"):
        assert (tmp_path / "cli" / name).read_bytes() == (api.path / name).read_bytes(), name
    result = CliRunner().invoke(cli, ["run", str(path), "--plugins", "no_such_module"])
    assert result.exit_code == 1 and "error: plugin module no_such_module: cannot import" \
        in result.stderr and "Traceback" not in result.output


def test_import_harness_is_light():
    code = ("import sys, harness, harness.api; "
            "print(sorted(m for m in ('torch', 'pandas', 'scipy', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "[]"
    assert callable(harness.run) and harness.Results.__name__ == "Results"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        harness.nope
