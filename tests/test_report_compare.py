"""Report statistics on real runs: undefined tests in a one-folder report."""
import csv
import json
import math

import pytest

import fake_plugins  # noqa: F401  (registers the fake plugins)
from harness import config as config_mod
from harness.benchmark import run_benchmark
from harness.reports import build_report


def write_dataset(folder, docs, queries, qrels):
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as fh:
        fh.writelines(json.dumps({"_id": d, "title": "", "text": t}) + "\n"
                      for d, t in docs.items())
    with open(folder / "queries.jsonl", "w") as fh:
        fh.writelines(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{g}\n" for q, docs_ in qrels.items() for d, g in docs_.items()))
    return folder


def run(dataset, out, pipelines, max_queries=None):
    cfg = config_mod.validate({
        "name": out.name, "dataset": {"name": str(dataset)}, "k": 10,
        "measures": ["nDCG@10", "RR@10"], "timing": {"latency_queries": 0},
        "isolation": "none", "pipelines": pipelines})
    return run_benchmark(cfg, out, max_queries=max_queries, progress=False).out_dir


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# The reranker puts the shorter doc id first among the top 2: every query's relevant doc (long id,
# two query words) drops from rank 1 to rank 2 under the non-relevant one (short id, one word).
RERANKED = [{"name": "overlap", "retriever": {"type": "fake-overlap"},
             "rerank": {"type": "fake-shortest", "depth": 2}}]


@pytest.fixture(scope="module")
def rank_two(tmp_path_factory):
    docs, queries, qrels = {}, {}, {}
    for i, word in enumerate(["alpha", "bravo", "charlie", "delta"]):
        docs[f"rel{i}"], docs[f"n{i}"] = f"{word} {word}x", word
        queries[f"q{i}"], qrels[f"q{i}"] = f"{word} {word}x", {f"rel{i}": 1}
    return write_dataset(tmp_path_factory.mktemp("rank2") / "data", docs, queries, qrels)


def test_constant_differences_report_t_test_na_and_honest_randomisation_p(rank_two, tmp_path):
    results = run(rank_two, tmp_path / "const", RERANKED)
    index = build_report(results, tmp_path / "report")
    rows = {r["measure"]: r for r in read_csv(index.parent / "summary.csv")
            if r["pipeline"] == "overlap>>fake-shortest@2"}
    rr = rows["RR@10"]   # 1 -> 1/2 on each of the 4 queries
    assert float(rr["delta"]) == -0.5
    assert math.isnan(float(rr["p_t_test"])) and math.isnan(float(rr["p_t_test_holm"]))
    assert float(rr["p_randomisation"]) == pytest.approx(2 / 16)   # exact: all 2**4 sign flips
    assert "differences have zero variance" in rr["note"]
    md = (index.parent / "summary.md").read_text()
    assert "t-test n/a: differences have zero variance (every query -0.5)" in md
    assert "t-test n/a: differences have zero variance" in index.read_text()


def test_one_judged_query_report_says_na_instead_of_crashing(rank_two, tmp_path):
    results = run(rank_two, tmp_path / "one", RERANKED, max_queries=1)
    index = build_report(results, tmp_path / "report")   # scipy raised ValueError here
    rows = read_csv(index.parent / "summary.csv")
    tested = [r for r in rows if r["pipeline"] == "overlap>>fake-shortest@2"]
    assert tested and all(math.isnan(float(r[k])) for r in tested
                          for k in ("p_t_test", "p_randomisation", "p_randomisation_holm"))
    assert all(r["note"] == "n/a: 1 common query; a paired test needs at least 2" for r in tested)
    assert all(r["ci_low"] == r["ci_high"] == "" for r in rows)   # no zero-width interval
    html = index.read_text()
    assert "no interval: 1 query" in html and "n/a: 1 common query" in html

