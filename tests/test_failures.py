"""A failure fails exactly the pipelines that need the failed node, under the node's name."""
import json

import flaky_plugins  # noqa: F401  (registers the plugins)
import fake_plugins  # noqa: F401
from harness.execution.benchmark import run_benchmark
from test_runner import make_config


def statuses(out):
    meta = json.loads((out.out_dir / "metadata.json").read_text())["pipelines"]
    return {name: (p["status"], p["reason"]) for name, p in meta.items()}


def test_node_failed_in_one_worker_but_saved_by_a_later_one_is_not_reported_failed(
        tiny_beir, tmp_path):
    """Defect 10: with process isolation, a node that failed in one group's worker and was then
    computed and saved by a later group's worker still failed the later group's pipelines."""
    flag = tmp_path / "fail-once"
    flag.touch()
    flaky = {"type": "fake-flaky", "fail_once_file": str(flag)}
    cfg = make_config(tiny_beir, isolation="process", pipelines=[
        {"name": "fused", "fuse": {"type": "rrf", "inputs": ["flaky", "overlap"]}},
        {"name": "flaky", "retriever": flaky},
        {"name": "overlap", "retriever": {"type": "fake-overlap"}}])
    got = statuses(run_benchmark(cfg, tmp_path / "out", progress=False))
    assert got["fused"][0] == "failed" and "flaky retriever failed once" in got["fused"][1]
    assert got["flaky"] == ("ok", None) and got["overlap"] == ("ok", None)


def test_nan_scores_fail_their_node_and_its_pipelines_only_naming_the_stage(tiny_beir, tmp_path):
    """Defect 13: NaN scores of one stage must fail the pipelines built on it, named by the stage
    that produced them, and nothing else."""
    cfg = make_config(tiny_beir, pipelines=[
        {"name": "nan", "retriever": {"type": "fake-flaky", "nan_query": "q2"},
         "rerank": {"type": "fake-shortest", "depth": 2}},
        {"name": "overlap", "retriever": {"type": "fake-overlap"},
         "rerank": {"type": "fake-shortest", "depth": 2}},
        {"name": "fused", "fuse": {"type": "rrf", "inputs": ["nan", "overlap"]}}])
    out = run_benchmark(cfg, tmp_path / "out", progress=False)
    got = statuses(out)
    for name in ("nan", "nan>>fake-shortest@2", "fused"):
        assert got[name][0] == "failed", name
        assert "stage retriever:fake-flaky, query 'q2'" in got[name][1] and "nan" in got[name][1]
    assert got["overlap"] == ("ok", None) and got["overlap>>fake-shortest@2"] == ("ok", None)
    metrics = (out.out_dir / "metrics.csv").read_text()
    assert "overlap>>fake-shortest@2," in metrics and "\nnan," not in metrics


def test_summary_table_marks_failures_and_names_reasons_below(tiny_beir, tmp_path, capsys):
    from harness.execution.summary import format_table, print_summary
    cfg = make_config(tiny_beir, pipelines=[
        {"name": "broken", "retriever": {"type": "fake-overlap", "fail": True}},
        {"name": "overlap", "retriever": {"type": "fake-overlap"}}])
    out = run_benchmark(cfg, tmp_path / "out", progress=False)
    lines = format_table(out).splitlines()
    assert lines[2].split() == ["broken", "FAILED"]
    assert lines[0].index("RR@10") < 30  # a failure's reason no longer widens a measure column
    print_summary(out)
    assert "failed: broken: RuntimeError: fake retriever asked to fail" in capsys.readouterr().err
