import json

import pytest
import yaml

import fake_plugins  # noqa: F401  (registers the fake plugins)
from fake_plugins import CALLS
from harness import config as config_mod
from harness.execution.benchmark import run_benchmark
from harness.evaluation.metrics import evaluate, parse_measures
from harness.storage.trec import read_run


def make_config(folder, pipelines=(), **over):
    data = {"name": "t", "dataset": {"name": str(folder)}, "k": 10,
            "measures": ["nDCG@10", "RR@10", "R@10"],
            "timing": {"latency_queries": 3, "warmup": 1}, "pipelines": pipelines,
            "isolation": "none", **over}
    return config_mod.validate(data)


def test_shared_prefix_computed_once_and_results_layout(tiny_beir, tmp_path):
    CALLS.clear()
    cfg = make_config(tiny_beir, [
        {"name": "overlap", "retriever": {"type": "fake-overlap"},
         "rerank": {"type": "fake-shortest", "depth": [1, 2, 3]}}])
    out = run_benchmark(cfg, tmp_path / "out", progress=False)
    names = [r.pipeline.name for r in out.results]
    assert names == ["overlap", "overlap>>fake-shortest@1", "overlap>>fake-shortest@2",
                     "overlap>>fake-shortest@3"]
    assert CALLS["index"] == 1          # first stage indexed once for all four pipelines
    assert CALLS["reranker_init"] == 1  # one reranker instance serves every depth
    for name in ("config.yaml", "metadata.json", "metrics.csv", "per_query.csv", "timings.csv"):
        assert (out.out_dir / name).exists()
    meta = json.loads((out.out_dir / "metadata.json").read_text())
    assert meta["pipelines"]["overlap>>fake-shortest@2"]["parent"] == "overlap"
    assert meta["pipelines"]["overlap"]["queries_without_results"] == 1  # q4 matches nothing
    # metrics.csv equals an independent evaluation of the written run file
    run = read_run(out.out_dir / meta["pipelines"]["overlap"]["run_file"])
    from harness.datasets import load_dataset
    expected = evaluate(load_dataset(str(tiny_beir)).qrels, run, parse_measures(cfg.measures))
    rows = (out.out_dir / "metrics.csv").read_text().splitlines()
    assert rows[0] == "pipeline,measure,value"
    got = {r.split(",")[1]: float(r.split(",")[2]) for r in rows[1:] if r.startswith("overlap,")}
    assert got == expected.aggregate
    timings = (out.out_dir / "timings.csv").read_text()
    assert "overlap,total,single,p95_ms," in timings and "overlap,first_stage,batch,qps," in timings
    assert "overlap>>fake-shortest@2,rerank,single,n_queries,3" in timings


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_failed_pipeline_is_recorded_and_others_finish(tiny_beir, tmp_path, isolation):
    cfg = make_config(tiny_beir, isolation=isolation, pipelines=[
        {"name": "good", "retriever": {"type": "fake-overlap"}},
        {"name": "bad", "retriever": {"type": "fake-overlap", "fail": True},
         "rerank": {"type": "fake-shortest", "depth": 2}}])
    assert cfg.isolation == isolation
    out = run_benchmark(cfg, tmp_path / "out", progress=False)
    meta = json.loads((out.out_dir / "metadata.json").read_text())
    assert meta["pipelines"]["good"]["status"] == "ok"
    for name in ("bad", "bad>>fake-shortest@2"):
        assert meta["pipelines"][name]["status"] == "failed"
        assert "fake retriever asked to fail" in meta["pipelines"][name]["reason"]
    assert "bad" not in (out.out_dir / "metrics.csv").read_text()


def test_rerun_resumes_every_node_and_gives_identical_metrics(tiny_beir, tmp_path):
    cfg = make_config(tiny_beir, [{"name": "overlap", "retriever": {"type": "fake-overlap"},
                                   "rerank": {"type": "fake-shortest", "depth": 2}}])
    first = run_benchmark(cfg, tmp_path / "out", progress=False)
    metrics = (first.out_dir / "metrics.csv").read_bytes()
    assert len(first.computed_nodes) == 2
    CALLS.clear()
    second = run_benchmark(cfg, tmp_path / "out", progress=False)
    assert second.computed_nodes == [] and CALLS["search"] == 0
    assert (second.out_dir / "metrics.csv").read_bytes() == metrics
    forced = run_benchmark(cfg, tmp_path / "out", force=True, progress=False)
    assert len(forced.computed_nodes) == 2


def test_corrupt_saved_node_is_recomputed(tiny_beir, tmp_path):
    cfg = make_config(tiny_beir, [{"name": "overlap", "retriever": {"type": "fake-overlap"}}])
    first = run_benchmark(cfg, tmp_path / "out", progress=False)
    (trec,) = (first.out_dir / "nodes").glob("*.trec")
    trec.write_text(trec.read_text()[:-20])  # truncated, as a kill mid-write would leave it
    second = run_benchmark(cfg, tmp_path / "out", progress=False)
    assert len(second.computed_nodes) == 1
    assert (second.out_dir / "metrics.csv").read_bytes() == (first.out_dir / "metrics.csv").read_bytes()


def test_cli_run_prints_table_and_written_config_round_trips(tiny_beir, tmp_path):
    from click.testing import CliRunner

    from harness.cli import cli
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump({
        "name": "t", "dataset": {"name": str(tiny_beir)}, "k": 10, "measures": ["nDCG@10"],
        "pipelines": [{"name": "bm25s", "retriever": {"type": "bm25s", "stemmer": None}}]}))
    result = CliRunner().invoke(cli, ["run", str(cfg_path), "--out", str(tmp_path / "o"), "--no-report"])
    assert result.exit_code == 0, result.output
    assert "nDCG@10" in result.output and "bm25s" in result.output
    config_mod.load(tmp_path / "o" / "config.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\ndataset: {name: scifact}\npipelines: [{name: x, retriever: {type: nope}}]\n")
    result = CliRunner().invoke(cli, ["run", str(bad)])
    assert result.exit_code == 1 and "unknown retriever 'nope'" in result.output


def test_timeout_memory_cap_and_crash_fail_only_their_pipeline(tiny_beir, tmp_path):
    cfg = make_config(tiny_beir, isolation="process", pipelines=[
        {"name": "slow", "retriever": {"type": "fake-overlap", "sleep_s": 30}, "timeout_s": 2},
        {"name": "good", "retriever": {"type": "fake-overlap"}},
        {"name": "hog", "retriever": {"type": "fake-overlap", "alloc_mb": 600, "sleep_s": 5},
         "memory_cap_mb": 300},
        {"name": "crash", "retriever": {"type": "fake-overlap", "crash": True}}])
    out = run_benchmark(cfg, tmp_path / "out", progress=False)
    meta = json.loads((out.out_dir / "metadata.json").read_text())["pipelines"]
    assert meta["good"]["status"] == "ok"
    assert meta["slow"]["status"] == "failed" and meta["slow"]["reason"].startswith("timeout")
    assert meta["hog"]["status"] == "failed" and "memory cap exceeded" in meta["hog"]["reason"]
    assert meta["crash"]["status"] == "failed" and "SIGKILL" in meta["crash"]["reason"]
    metrics = (out.out_dir / "metrics.csv").read_text()
    assert "good," in metrics and "slow," not in metrics and "hog," not in metrics
    from harness.reports import build_report
    html = build_report(out.out_dir, tmp_path / "report").read_text()
    section = html[html.index('<section id="failed">'):]
    section = section[:section.index("</section>")]
    for name in ("slow", "hog", "crash"):
        assert f"<td>{name}</td>" in section
    assert "timeout: still running after timeout_s=2" in section and "memory cap exceeded" in section


def test_output_paths_stay_inside_the_results_folder(tiny_beir, tmp_path):
    cfg = make_config(tiny_beir, [{"name": "../../escape", "retriever": {"type": "fake-overlap"}}])
    out = run_benchmark(cfg, tmp_path / "a" / "out", progress=False)
    run_file = json.loads((out.out_dir / "metadata.json").read_text())["pipelines"]["../../escape"]["run_file"]
    assert (out.out_dir / run_file).resolve().parent == (out.out_dir / "runs").resolve()
    assert not any((tmp_path / "a").glob("*.trec")) and not any(tmp_path.glob("*.trec"))


def test_config_cannot_name_code(tiny_beir):
    with pytest.raises(config_mod.ConfigError, match="unknown retriever 'os.system'"):
        make_config(tiny_beir, [{"name": "x", "retriever": {"type": "os.system"}}])


def test_identical_ids_are_kept_unless_the_dataset_asks(tmp_path):
    folder = tmp_path / "quora-like"
    (folder / "qrels").mkdir(parents=True)
    docs = {"x1": "how do i learn python", "x2": "learning python quickly", "x3": "cooking rice"}
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in docs.items()))
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "x1", "text": docs["x1"]}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nx1\tx2\t1\n")
    pipelines = [{"name": "o", "retriever": {"type": "fake-overlap"}}]
    kept = run_benchmark(make_config(folder, pipelines), tmp_path / "kept", progress=False)
    assert "x1" in kept.results[0].run["x1"]  # by default nothing is removed
    assert kept.evaluations["o"].aggregate["RR@10"] == 0.5
    cfg = make_config(folder, pipelines, dataset={"name": str(folder), "ignore_identical_ids": True})
    dropped = run_benchmark(cfg, tmp_path / "dropped", progress=False)
    assert dropped.evaluations["o"].aggregate["RR@10"] == 1.0
    meta = json.loads((dropped.out_dir / "metadata.json").read_text())
    assert meta["pipelines"]["o"]["identical_ids_removed"] == 1


def test_planner_metadata_of_pipelines(tiny_beir):
    from harness.execution.plan import Planner
    cfg = make_config(tiny_beir, [
        {"name": "o", "retriever": {"type": "fake-overlap"},
         "rerank": {"type": "fake-shortest", "depth": [3]}}])
    first, reranked = Planner(cfg).pipelines()
    assert (first.parent, first.sweep, first.tolerance_class) == (None, None, "model")
    assert (reranked.name, reranked.parent, reranked.leaf.depth, reranked.tolerance_class) == \
        ("o>>fake-shortest@3", "o", 3, "model")


def timing_rows(out_dir) -> dict:
    """timings.csv as {(pipeline, stage, mode, stat): value}."""
    import csv
    with open(out_dir / "timings.csv", newline="") as fh:
        return {(r["pipeline"], r["stage"], r["mode"], r["stat"]): float(r["value"])
                for r in csv.DictReader(fh)}


@pytest.mark.parametrize("warmup", [0, 2])
def test_batch_timing_excludes_a_cold_first_call(tiny_beir, tmp_path, warmup):
    CALLS.clear()
    cfg = make_config(tiny_beir, [{"name": "o", "retriever": {"type": "fake-overlap",
                                                              "first_call_s": 0.5}}],
                      timing={"latency_queries": 3, "warmup": warmup})
    out = run_benchmark(cfg, tmp_path / "out", progress=False)
    batch_s = timing_rows(out.out_dir)[("o", "first_stage", "batch", "wall_s")]
    if warmup:
        assert batch_s < 0.5  # the cold call was an untimed warm-up batch
        # warm-up batch, timed batch, single-query warm-ups, timed single queries
        assert CALLS["search"] == 1 + 1 + warmup + 3
    else:  # no warm-up asked: the cold call is the batch (what the test above relies on)
        assert batch_s >= 0.5 and CALLS["search"] == 1 + 3


def test_total_latency_never_includes_a_stage_build(tiny_beir, tmp_path):
    """A first stage resumed from disk is built (and indexed) before end-to-end timing starts,
    also with no warm-up calls."""
    timing = {"latency_queries": 3, "warmup": 0}
    first = {"name": "o", "retriever": {"type": "fake-overlap", "index_s": 0.5}}
    run_benchmark(make_config(tiny_beir, [first], timing=timing), tmp_path / "out", progress=False)
    reranked = {**first, "rerank": {"type": "fake-shortest", "depth": 2}}
    out = run_benchmark(make_config(tiny_beir, [reranked], timing=timing), tmp_path / "out",
                        progress=False)
    assert len(out.computed_nodes) == 1  # the rerank node; the first stage was resumed
    rows = timing_rows(out.out_dir)
    n = rows[("o>>fake-shortest@2", "total", "single", "n_queries")]
    assert n == 3
    assert rows[("o>>fake-shortest@2", "total", "single", "mean_ms")] * n < 500  # < one build


def test_batch_threads_are_the_stages_own(tiny_beir, tmp_path):
    cfg = make_config(tiny_beir, threads=3, pipelines=[
        {"name": "o", "retriever": {"type": "fake-overlap"},
         "rerank": {"type": "fake-shortest", "depth": 2}},
        {"name": "p", "retriever": {"type": "fake-overlap"},
         "rerank": {"type": "oracle", "depth": 2}},
        {"name": "f", "fuse": {"type": "rrf", "inputs": ["o", "p"]}}])
    rows = timing_rows(run_benchmark(cfg, tmp_path / "out", progress=False).out_dir)
    assert rows[("o", "first_stage", "batch", "threads")] == 1  # declared: pure Python
    assert rows[("o>>fake-shortest@2", "rerank", "batch", "threads")] == 3  # undeclared: the run's
    assert rows[("p>>oracle@2", "rerank", "batch", "threads")] == 1
    assert rows[("f", "fusion", "batch", "threads")] == 1


def test_ann_search_threads_are_the_backends(tiny_beir, tmp_path):
    """Annoy answers a batch one query at a time in one thread; the query encoding before it
    uses the run's threads."""
    from tiny_models import tiny_sentence_transformer
    model = str(tiny_sentence_transformer(tmp_path / "st"))
    cfg = make_config(tiny_beir, threads=3, pipelines=[{"name": "annoy", "retriever": {
        "type": "dense", "model": model, "index": {"type": "annoy", "build": {"n_trees": 2}}}}])
    rows = timing_rows(run_benchmark(cfg, tmp_path / "out", progress=False).out_dir)
    assert rows[("annoy", "ann_search", "batch", "threads")] == 1
    assert rows[("annoy", "first_stage", "batch", "threads")] == 3


def test_ann_index_sweep_runs_with_a_token_embedding_rerank(tiny_beir, tmp_path):
    """The runner asks each stage point what it needs (token embeddings for MaxSim) after the
    planner's expansion: an index sweep's raw list once reached DenseParams and failed the run
    before any work (configs/scifact-ann.yaml)."""
    from tiny_models import tiny_sentence_transformer
    from harness.execution.runner import token_encoders
    from harness.rerankers.maxsim import MaxSimParams
    model = str(tiny_sentence_transformer(tmp_path / "st"))
    cfg = make_config(tiny_beir, pipelines=[{"name": "d", "retriever": {
        "type": "dense", "model": model,
        "index": [{"type": "flat"}, {"type": "hnsw", "search": {"ef": [10, 16]}}]},
        "rerank": {"type": "maxsim", "model": model, "depth": 3}}])
    assert token_encoders(cfg) == {MaxSimParams(model=model).token_encoder()}
    outcome = run_benchmark(cfg, tmp_path / "out", progress=False)
    assert [r.pipeline.name for r in outcome.results if r.error] == []
    assert len(outcome.results) == 6  # 3 index points, each with and without the rerank


def test_provenance_is_the_git_state_when_the_run_started(tiny_beir, tmp_path, monkeypatch):
    """A commit made while a long run works is not recorded as the code that ran."""
    from harness.execution import benchmark
    state = {"git_commit": "at-start", "git_dirty": False}
    real_execute = benchmark.execute

    def execute(*args, **kwargs):
        state["git_commit"] = "committed-during-the-run"
        return real_execute(*args, **kwargs)

    monkeypatch.setattr(benchmark, "git_state", lambda cwd: dict(state))
    monkeypatch.setattr(benchmark, "execute", execute)
    cfg = make_config(tiny_beir, [{"name": "overlap", "retriever": {"type": "fake-overlap"}}])
    out = run_benchmark(cfg, tmp_path / "out", progress=False).out_dir
    assert json.loads((out / "metadata.json").read_text())["git_commit"] == "at-start"
