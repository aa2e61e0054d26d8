"""`harness check` and `harness baseline` on folders written by the real runner (`run_benchmark`)."""
import json

import pytest
import yaml
from click.testing import CliRunner

import fake_plugins  # noqa: F401  (registers the fake plugins)
from harness import config as config_mod
from harness.execution.benchmark import run_benchmark
from harness.regression.cli import baseline_command, check_command

DOCS = {"d1": "red apples and green pears", "d2": "green tea leaves from the green hills",
        "d3": "red wine grapes", "d4": "apple pie recipe with red apples and red sugar",
        "d5": "pears poached in red wine", "d6": "a long text about wine wine wine and more wine "
                                               "and many other words that make it long"}
QUERIES = {"q1": "red apples", "q2": "green pears", "q3": "red wine", "q4": "wine"}
QRELS = [("q1", "d4", 1), ("q1", "d1", 1), ("q2", "d1", 1), ("q3", "d5", 2), ("q3", "d3", 1),
         ("q4", "d3", 1), ("q4", "d5", 1)]


@pytest.fixture
def tiny_beir(tmp_path):
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in DOCS.items()))
    (folder / "queries.jsonl").write_text("".join(
        json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in QRELS))
    return folder


def pipelines(b=0.75):
    return [
        {"name": "bm25s", "retriever": {"type": "bm25s", "stemmer": None, "k1": 1.2, "b": b}},
        {"name": "overlap", "retriever": {"type": "fake-overlap"},
         "rerank": {"type": "fake-shortest", "depth": 2}},
        {"name": "rrf", "fuse": {"type": "rrf", "inputs": ["bm25s", "overlap"]}}]


def run(folder, out, pipes):
    cfg = config_mod.validate({"name": "t", "dataset": {"name": str(folder)}, "k": 100,
                               "measures": ["nDCG@10", "R@100"],
                               "timing": {"latency_queries": 4, "warmup": 1}, "pipelines": pipes})
    return run_benchmark(cfg, out, progress=False).out_dir


def test_baseline_of_a_real_run_round_trips_and_a_degraded_run_fails(tiny_beir, tmp_path):
    good = run(tiny_beir, tmp_path / "good", pipelines())
    base = tmp_path / "baselines" / "t.yaml"
    res = CliRunner().invoke(baseline_command, [str(good), "--write", str(base),
                                                "--latency-reference", "bm25s"])
    assert res.exit_code == 0, res.output + res.stderr
    data = yaml.safe_load(base.read_text())["pipelines"]
    assert {n: p["tolerance_class"] for n, p in data.items()} == {
        "bm25s": "deterministic", "overlap": "model", "overlap>>fake-shortest@2": "model",
        "rrf": "model"}  # fusion of a deterministic and a model input: the looser class
    assert data["overlap"]["latency"][0]["reference"] == "bm25s"

    res = CliRunner().invoke(check_command, [str(good), "--baseline", str(base)])
    assert res.exit_code == 0, res.output + res.stderr

    degraded = run(tiny_beir, tmp_path / "degraded", pipelines(b=0.0))  # no length normalisation
    res = CliRunner().invoke(check_command, [str(degraded), "--baseline", str(base),
                                             "--format", "json"])
    assert res.exit_code == 1, res.output
    report = json.loads(res.output)
    failed = {(c["pipeline"], c["measure"]) for c in report["checks"] if c["outcome"] == "fail"}
    assert ("bm25s", "nDCG@10") in failed
    msg = next(m for m in report["messages"] if m.startswith("FAIL bm25s nDCG@10"))
    assert "expected" in msg and "actual" in msg and "tolerance ±5e-05 (deterministic)" in msg


def test_expect_blocks_in_the_config_are_checked(tiny_beir, tmp_path):
    first = run(tiny_beir, tmp_path / "first", pipelines())
    ndcg = {r.split(",")[0]: float(r.split(",")[2])
            for r in (first / "metrics.csv").read_text().splitlines()[1:] if ",nDCG@10," in r}
    pipes = pipelines()
    pipes[0]["expect"] = {"nDCG@10": round(ndcg["bm25s"], 4)}
    pipes[2]["expect"] = {"nDCG@10": ndcg["rrf"] - 0.004}  # within model inference's 0.005
    checked = run(tiny_beir, tmp_path / "checked", pipes)
    res = CliRunner().invoke(check_command, [str(checked)])
    assert res.exit_code == 0, res.output + res.stderr
    assert "PASSED: 2 checks: 2 pass" in res.output
