"""`harness check` / `harness baseline` on results folders written through the runner's writer."""
import json

import pytest
import yaml
from click.testing import CliRunner

from harness.config import Config
from harness.core.errors import DataError
from harness.evaluation.metrics import Evaluation
from harness.regression.cli import baseline_command, check_command
from harness.regression.tolerances import resolve_classes
from harness.storage.results_folder import PipelineInfo, ResultsWriter
from harness.storage.results_folder.layout import BATCH, P95_MS, QPS, SINGLE, TOTAL

METRICS = {
    "bm25": {"nDCG@10": 0.678912345678, "R@100": 0.925311},
    "hnsw": {"nDCG@10": 0.641, "R@100": 0.9},
    "flat": {"nDCG@10": 0.645123, "R@100": 0.91},
}
KINDS = {"bm25": "deterministic", "hnsw": "ann", "flat": "deterministic"}  # tolerance classes
P95 = {"bm25": 2.0, "hnsw": 1.0, "flat": 4.0}


def write_results(folder, metrics=METRICS, kinds=KINDS, p95=P95, failed=(), config=None):
    """A results folder written as `harness run` writes it, through its writer (per-query values:
    one query, so that each mean is its only value)."""
    writer = ResultsWriter(folder)
    ok = [name for name in kinds if name not in failed]
    cfg = config or {"name": "synthetic", "pipelines": [
        {"name": n, "retriever": {"type": "bm25"}} for n in kinds]}
    writer.config(Config.model_validate({"dataset": {"name": "scifact"}, **cfg}))
    writer.metrics({p: Evaluation(dict(metrics[p]), {m: {"q1": v} for m, v in metrics[p].items()},
                                  0) for p in ok if p in metrics})
    timed = [p for p in p95 if p not in failed]
    writer.timings([(p, TOTAL, SINGLE, P95_MS, p95[p]) for p in timed] +
                   [(p, TOTAL, BATCH, QPS, 1000.0 / p95[p]) for p in timed])
    pipelines = {}
    for name, kind in kinds.items():
        pipelines[name] = {"status": "failed" if name in failed else "ok", "kind": "first_stage",
                           "tolerance_class": kind, "parent": None, "sweep": None,
                           "rerank_depth": None, "stages": ["retriever:bm25"],
                           "reason": "MemoryError: over the 4 GiB cap" if name in failed else None}
        if name not in failed:
            pipelines[name]["run_file"] = writer.run(name, {"q1": {"d1": 1.0}})
    writer.metadata({
        "run_name": folder.name, "config_name": "synthetic",
        "dataset": {"name": "scifact", "split": "test", "n_docs": 500, "n_queries": 100},
        "pipelines": pipelines})
    return folder


def write_baseline(path, pipelines, **top):
    path.write_text(yaml.safe_dump({"version": 1, **top, "pipelines": pipelines}))
    return path


def check(*args):
    return CliRunner().invoke(check_command, [str(a) for a in args])


@pytest.fixture
def results(tmp_path):
    return write_results(tmp_path / "run")


@pytest.fixture
def baseline(tmp_path):
    return write_baseline(tmp_path / "base.yaml", {
        "bm25": {"kind": "lucene-bm25", "tolerance_class": "deterministic",
                 "measures": {"nDCG@10": 0.6789, "R@100": 0.9253}},
        "hnsw": {"kind": "ann", "tolerance_class": "ann", "measures": {"nDCG@10": 0.645}}})


def test_pass_exit_0_with_table_and_summary(results, baseline):
    res = check(results, "--baseline", baseline)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split() == ["pipeline", "measure", "expected", "actual", "delta", "tolerance",
                                "outcome"]
    assert any(line.split()[:2] == ["hnsw", "nDCG@10"] and line.endswith("pass") for line in lines)
    assert lines[-1] == "PASSED: 3 checks: 3 pass"
    assert "not checked (no expectations): flat" in res.output


def test_worse_than_tolerance_fails_with_a_diff_naming_everything(results, baseline, tmp_path):
    metrics = {**METRICS, "bm25": {"nDCG@10": 0.6012, "R@100": 0.925311}}
    run = write_results(tmp_path / "worse", metrics=metrics)
    res = check(run, "--baseline", baseline)
    assert res.exit_code == 1
    assert ("FAIL bm25 nDCG@10: expected 0.67890, actual 0.60120, delta -0.07770, "
            "tolerance ±5e-05 (deterministic)") in res.output
    assert res.output.splitlines()[-1] == "FAILED: 3 checks: 2 pass, 1 fail"


def test_better_than_tolerance_is_improved_exit_3_with_update_command(baseline, tmp_path):
    metrics = {**METRICS, "hnsw": {"nDCG@10": 0.70, "R@100": 0.9}}
    run = write_results(tmp_path / "better", metrics=metrics)
    res = check(run, "--baseline", baseline)
    assert res.exit_code == 3, res.output
    assert "IMPROVED hnsw nDCG@10: expected 0.64500, actual 0.70000" in res.output
    assert "*** IMPROVED" in res.output
    assert f"harness baseline {run} --write {baseline} --pipelines bm25,hnsw" in res.output
    assert check(run, "--baseline", baseline, "--improved-ok").exit_code == 0


def test_fail_wins_over_improved(baseline, tmp_path):
    metrics = {**METRICS, "bm25": {"nDCG@10": 0.5, "R@100": 0.95}}
    res = check(write_results(tmp_path / "mixed", metrics=metrics), "--baseline", baseline,
                "--improved-ok")
    assert res.exit_code == 1
    assert "1 fail, 1 improved" in res.output


def test_missing_pipeline_and_missing_measure_fail(results, tmp_path):
    base = write_baseline(tmp_path / "b.yaml", {
        "bm25": {"tolerance_class": "deterministic",
                 "measures": {"nDCG@10": 0.6789, "RR@10": 0.64}},
        "colbert": {"tolerance_class": "model", "measures": {"nDCG@10": 0.69}}})
    res = check(results, "--baseline", base)
    assert res.exit_code == 1
    assert "MISSING bm25 RR@10: expected 0.64000, tolerance ±5e-05 (deterministic); measure " \
           "not in metrics.csv for this pipeline" in res.output
    assert "MISSING colbert *: pipeline not in this run" in res.output


def test_pipeline_failed_in_the_run_fails_with_its_reason(baseline, tmp_path):
    run = write_results(tmp_path / "oom", failed=("hnsw",))
    res = check(run, "--baseline", baseline)
    assert res.exit_code == 1
    assert "RUN-FAILED hnsw *: pipeline failed in this run: MemoryError: over the 4 GiB cap" \
        in res.output


@pytest.mark.parametrize("content, message", [
    ("pipeline,measure,value\nbm25,nDCG@10,abc\n", "metrics.csv:2: value 'abc' is not a number"),
    ("pipeline,measure,value\nbm25,nDCG@10,nan\n", "metrics.csv:2: value 'nan' is not finite"),
    ("pipe,measure,value\n", "metrics.csv:1: expected header"),
    ("pipeline,measure,value\nbm25,nDCG@10\n", "metrics.csv:2: expected 3 columns, got 2"),
    ("pipeline,measure,value\nbm25,nDCG@10,0.6\nbm25,nDCG@10,0.6\n",
     "metrics.csv:3: repeated row"),
    (None, "metrics.csv: cannot read"),
])
def test_unreadable_metrics_fail_naming_the_file(results, baseline, content, message):
    path = results / "metrics.csv"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    res = check(results, "--baseline", baseline)
    assert res.exit_code == 1
    assert res.stderr.startswith("error: ") and message in res.stderr
    assert str(path) in res.stderr


def test_missing_results_folder_and_bad_metadata_fail(tmp_path, baseline, results):
    res = check(tmp_path / "nope", "--baseline", baseline)
    assert res.exit_code == 1 and "results folder not found" in res.stderr
    (results / "metadata.json").write_text("{not json")
    res = check(results, "--baseline", baseline)
    assert res.exit_code == 1 and "metadata.json:1: not valid JSON" in res.stderr


@pytest.mark.parametrize("entry, message", [
    ({"status": "done"}, "pipelines.bm25.status: expected 'ok' or 'failed', got 'done'"),
    ({"status": "ok", "rerank_depth": "20"}, "pipelines.bm25.rerank_depth: expected int, got '20'"),
    ({"status": "ok", "parent": "nope"}, "pipelines.bm25.parent: 'nope' is not a pipeline"),
    ({"status": "ok", "run_file": "../x.trec"}, "pipelines.bm25.run_file: '../x.trec' is not a "
                                                "path inside the folder"),
])
def test_malformed_metadata_entries_fail_naming_the_field(results, baseline, entry, message):
    meta = json.loads((results / "metadata.json").read_text())
    meta["pipelines"]["bm25"] = entry
    (results / "metadata.json").write_text(json.dumps(meta))
    res = check(results, "--baseline", baseline)
    assert res.exit_code == 1 and f"metadata.json: {message}" in res.stderr


@pytest.mark.parametrize("text, message", [
    ("pipelines: [unclosed\n", "base.yaml:2: YAML syntax error"),
    ("- a list\n", "expected a YAML mapping"),
    ("version: 1\npipelines: {bm25: {measures: {nDCG@10: high}}}\n",
     "pipelines.bm25.measures.nDCG@10: Input should be a valid number"),
    ("version: 1\npipelines: {bm25: {tolerence: {nDCG@10: 0.1}}}\n",
     "pipelines.bm25.tolerence: unknown field"),
    ("version: 1\npipelines: {bm25: {tolerance_class: fuzzy}}\n", "pipelines.bm25.tolerance_class"),
    ("version: 1\npipelines: {}\n", "pipelines: Dictionary should have at least 1 item"),
    ("version: 2\npipelines: {bm25: {}}\n", "version: Input should be 1"),
])
def test_malformed_baseline_fails_naming_the_file(results, tmp_path, text, message):
    path = tmp_path / "base.yaml"
    path.write_text(text)
    res = check(results, "--baseline", path)
    assert res.exit_code == 1
    assert str(path) in res.stderr and message in res.stderr


def test_missing_baseline_file_fails(results, tmp_path):
    res = check(results, "--baseline", tmp_path / "absent.yaml")
    assert res.exit_code == 1 and "absent.yaml: cannot read" in res.stderr


@pytest.mark.parametrize("cls, tol_key, delta, outcome", [
    ("deterministic", {}, 5e-5, "pass"),      # exact to 4 decimals: the boundary passes
    ("deterministic", {}, -5e-5, "pass"),
    ("deterministic", {}, -6e-5, "FAIL"),
    ("deterministic", {}, 6e-5, "IMPROVED"),
    ("ann", {}, -0.01, "pass"),
    ("ann", {}, -0.0101, "FAIL"),
    ("model", {}, 0.005, "pass"),
    ("model", {}, 0.0051, "IMPROVED"),
    ("model", {"nDCG@10": 0.02}, -0.019, "pass"),   # per-measure override
    ("model", {"*": 0.02}, -0.021, "FAIL"),          # per-pipeline override
    ("model", {"*": 0.5, "nDCG@10": 0.0}, 0.001, "IMPROVED"),  # measure beats pipeline
])
def test_tolerance_boundaries(tmp_path, cls, tol_key, delta, outcome):
    expected = 0.6789
    run = write_results(tmp_path / "run", metrics={"p": {"nDCG@10": expected + delta}},
                        kinds={"p": "model"}, p95={})
    base = write_baseline(tmp_path / "b.yaml", {"p": {"tolerance_class": cls, "tolerance": tol_key,
                                                      "measures": {"nDCG@10": expected}}})
    res = check(run, "--baseline", base)
    row = next(line for line in res.output.splitlines() if line.startswith("p "))
    assert row.split()[-1] == outcome
    assert res.exit_code == {"pass": 0, "FAIL": 1, "IMPROVED": 3}[outcome]


def test_class_defaults_overridable_per_baseline(tmp_path):
    run = write_results(tmp_path / "run", metrics={"p": {"nDCG@10": 0.66}}, kinds={"p": "ann"},
                        p95={})
    base = write_baseline(tmp_path / "b.yaml", {"p": {"tolerance_class": "ann",
                                                      "measures": {"nDCG@10": 0.68}}},
                          tolerances={"ann": 0.03})
    res = check(run, "--baseline", base)
    assert res.exit_code == 0 and "±0.03 (ann)" in res.output


def _latency_baseline(tmp_path, **lat):
    return write_baseline(tmp_path / "lat.yaml", {"hnsw": {
        "tolerance_class": "ann", "measures": {},
        "latency": {"stat": "p95_ms", "stage": "total", "reference": "flat", **lat}}})


def test_latency_ratio_against_reference_in_the_same_run(tmp_path):
    base = _latency_baseline(tmp_path, max_ratio=1.5, expected_ratio=0.3)
    # hnsw p95 1.0 ms vs flat 4.0 ms: ratio 0.25 <= 1.5, whatever the machine's absolute speed
    res = check(write_results(tmp_path / "fast", p95={"hnsw": 1.0, "flat": 4.0}), "--baseline", base)
    assert res.exit_code == 0, res.output
    assert "latency:p95_ms" in res.output and "0.25000" in res.output
    # a uniformly 10x slower machine gives the same ratio: still a pass
    res = check(write_results(tmp_path / "slow", p95={"hnsw": 10.0, "flat": 40.0}), "--baseline",
                base)
    assert res.exit_code == 0
    # hnsw got slower relative to flat in the same run: 7/4 = 1.75 > 1.5
    res = check(write_results(tmp_path / "regressed", p95={"hnsw": 7.0, "flat": 4.0}),
                "--baseline", base)
    assert res.exit_code == 1
    assert "FAIL hnsw latency:p95_ms: expected 0.30000, actual 1.75000" in res.output
    assert "ratio <= 1.5 x flat" in res.output


def test_latency_ratio_boundary_improved_and_missing_row(tmp_path):
    base = _latency_baseline(tmp_path, max_ratio=1.5, min_ratio=0.2)
    assert check(write_results(tmp_path / "edge", p95={"hnsw": 6.0, "flat": 4.0}),
                 "--baseline", base).exit_code == 0
    res = check(write_results(tmp_path / "quick", p95={"hnsw": 0.4, "flat": 4.0}),
                "--baseline", base)
    assert res.exit_code == 3 and "IMPROVED hnsw latency:p95_ms" in res.output
    res = check(write_results(tmp_path / "untimed", p95={"hnsw": 1.0}), "--baseline", base)
    assert res.exit_code == 1
    assert "no positive row flat,total,single,p95_ms in timings.csv" in res.output


def test_unreadable_timings_fail_only_when_latency_is_checked(tmp_path, baseline):
    run = write_results(tmp_path / "run")
    (run / "timings.csv").write_text("pipeline,stage,mode,stat,value\nflat,total,single,p95_ms,x\n")
    assert check(run, "--baseline", baseline).exit_code == 0
    res = check(run, "--baseline", _latency_baseline(tmp_path, max_ratio=1.5))
    assert res.exit_code == 1 and "timings.csv:2: value 'x' is not a number" in res.stderr


def test_repeated_timing_rows_are_an_error_only_where_a_check_reads_them(tmp_path):
    run = write_results(tmp_path / "run")
    with open(run / "timings.csv", "a") as fh:  # a fusion's rows per input stage repeat keys
        fh.write("hnsw,first_stage,single,p95_ms,1.0\nhnsw,first_stage,single,p95_ms,2.0\n")
    assert check(run, "--baseline", _latency_baseline(tmp_path, max_ratio=1.5)).exit_code == 0
    base = _latency_baseline(tmp_path, max_ratio=1.5, stage="first_stage")
    res = check(run, "--baseline", base)
    assert res.exit_code == 1
    assert "timings.csv: row hnsw,first_stage,single,p95_ms is ambiguous (lines 8, 9)" in res.stderr


def test_baseline_write_then_check_round_trip(results, tmp_path):
    out = tmp_path / "baselines" / "synthetic.yaml"
    res = CliRunner().invoke(baseline_command, [str(results), "--write", str(out),
                                                "--latency-reference", "flat"])
    assert res.exit_code == 0, res.output
    data = yaml.safe_load(out.read_text())
    bm25 = data["pipelines"]["bm25"]
    assert bm25["measures"]["nDCG@10"] == 0.678912345678  # full precision, no rounding
    assert (bm25["kind"], bm25["tolerance_class"]) == ("first_stage", "deterministic")
    assert data["pipelines"]["hnsw"]["tolerance_class"] == "ann"
    assert data["pipelines"]["hnsw"]["latency"] == [{
        "reference": "flat", "max_ratio": 0.375, "min_ratio": 0.25 / 1.5,
        "expected_ratio": 0.25, "stat": "p95_ms", "stage": "total", "mode": "single"}]
    assert "latency" not in data["pipelines"]["flat"]  # the reference is not compared to itself
    assert data["recorded_from"]["dataset"]["n_queries"] == 100
    res = check(results, "--baseline", out)
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-1] == "PASSED: 8 checks: 8 pass"


def test_rewriting_a_baseline_keeps_hand_tuned_tolerances(results, tmp_path):
    out = tmp_path / "b.yaml"
    runner = CliRunner()
    assert runner.invoke(baseline_command, [str(results), "--write", str(out),
                                            "--pipelines", "bm25,hnsw"]).exit_code == 0
    data = yaml.safe_load(out.read_text())
    assert set(data["pipelines"]) == {"bm25", "hnsw"}
    data["pipelines"]["hnsw"]["tolerance"] = {"nDCG@10": 0.05}
    data["tolerances"] = {"model": 0.01}
    out.write_text(yaml.safe_dump(data))
    assert runner.invoke(baseline_command, [str(results), "--write", str(out),
                                            "--pipelines", "bm25,hnsw"]).exit_code == 0
    data = yaml.safe_load(out.read_text())
    assert data["pipelines"]["hnsw"]["tolerance"] == {"nDCG@10": 0.05}
    assert data["tolerances"] == {"model": 0.01}


@pytest.mark.parametrize("args, message", [
    (["--pipelines", "bm25,nope"], "unknown pipeline(s) nope"),
    (["--pipelines", "hnsw"], "pipeline 'hnsw' failed in this run (MemoryError"),
    (["--latency-reference", "nope"], "unknown latency reference 'nope'"),
])
def test_baseline_refuses_bad_selections(tmp_path, args, message):
    run = write_results(tmp_path / "run", failed=("hnsw",))
    out = tmp_path / "b.yaml"
    res = CliRunner().invoke(baseline_command, [str(run), "--write", str(out), *args])
    assert res.exit_code == 1 and message in res.stderr
    assert not out.exists()


def test_expect_blocks_of_the_runs_config(tmp_path):
    config = {"name": "synthetic", "pipelines": [
        {"name": "bm25", "retriever": {"type": "bm25"},
         "expect": {"nDCG@10": 0.6789, "R@100": 0.9253}},
        {"name": "hnsw", "retriever": {"type": "dense"}, "expect": {"nDCG@10": 0.62},
         "tolerance": {"nDCG@10": 0.03}},
        {"name": "flat", "retriever": {"type": "dense"}}]}
    run = write_results(tmp_path / "run", config=config)
    res = check(run)
    assert res.exit_code == 0, res.output
    assert "±5e-05 (deterministic)" in res.output and "±0.03 (ann)" in res.output
    assert "PASSED: 3 checks" in res.output
    config["pipelines"][1]["tolerance"] = {}
    run = write_results(tmp_path / "run2", config=config)
    res = check(run)
    assert res.exit_code == 3
    assert "update the `expect:` blocks" in res.output and "hnsw: expect: {nDCG@10: 0.6410}" \
        in res.output


def test_config_without_expect_blocks_is_an_error(results):
    res = check(results)
    assert res.exit_code == 1
    assert "config.yaml: no pipeline has an `expect:` block" in res.stderr


def test_json_and_markdown_formats(baseline, tmp_path):
    metrics = {**METRICS, "bm25": {"nDCG@10": 0.6012, "R@100": 0.925311}}
    run = write_results(tmp_path / "worse", metrics=metrics)
    res = check(run, "--baseline", baseline, "--format", "json")
    assert res.exit_code == 1
    data = json.loads(res.output)
    assert data["exit_code"] == 1 and data["counts"] == {"pass": 2, "fail": 1}
    failed = [c for c in data["checks"] if c["outcome"] == "fail"][0]
    assert (failed["pipeline"], failed["measure"], failed["expected"], failed["actual"]) == \
        ("bm25", "nDCG@10", 0.6789, 0.6012)
    assert failed["delta"] == pytest.approx(-0.0777)
    assert data["messages"][0].startswith("FAIL bm25 nDCG@10")
    res = check(run, "--baseline", baseline, "--format", "md")
    assert res.exit_code == 1
    assert res.output.startswith("### ❌ Regression check: FAILED")
    assert "| bm25 | nDCG@10 | 0.67890 | 0.60120 | -0.07770 | ±5e-05 (deterministic) | ❌ FAIL |" \
        in res.output


def test_dataset_mismatch_is_reported(results, tmp_path):
    base = write_baseline(tmp_path / "b.yaml", {"bm25": {"tolerance_class": "deterministic",
                                                         "measures": {"nDCG@10": 0.6789}}},
                          recorded_from={"dataset": {"name": "scifact", "n_queries": 300}})
    res = check(results, "--baseline", base)
    assert "different dataset: n_queries 300 -> 100" in res.output


def test_classes_are_read_from_metadata_and_an_unknown_one_is_an_error():
    meta = {"a": PipelineInfo("a", kind="first_stage", tolerance_class="deterministic"),
            "r": PipelineInfo("r", kind="rerank", tolerance_class="model")}
    assert resolve_classes(meta, "metadata.json") == {"a": "deterministic", "r": "model"}
    with pytest.raises(DataError, match="pipeline 'x' has tolerance_class 'fuzzy'; known: "):
        resolve_classes({"x": PipelineInfo("x", kind="first_stage", tolerance_class="fuzzy")},
                        "metadata.json")
