"""Report statistics on real runs: undefined tests in a one-folder report, and a two-folder
comparison whose folders judged different queries."""
import csv
import json
import math

import pytest

import fake_plugins  # noqa: F401  (registers the fake plugins)
from harness import config as config_mod
from harness.execution.benchmark import run_benchmark
from harness.reports import build_report

DOCS = {"d1": "red apples and green pears", "d2": "green tea leaves", "d3": "red wine grapes",
        "d4": "apple pie recipe with red apples", "d5": "pears poached in red wine"}
QUERIES = {"q1": "red apples", "q2": "green pears", "q3": "red wine", "q4": "zzz unmatched"}
QRELS = {"q1": {"d4": 1, "d1": 1}, "q2": {"d1": 1}, "q3": {"d5": 2, "d3": 1}, "q4": {"d2": 1}}


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


def test_two_folders_with_different_queries_compare_the_common_ones(tmp_path):
    # A judges q1-q3, B judges q2-q4: common q2, q3; only in A q1 (scores 1); only in B q4 (0).
    pipelines = [{"name": "bm25", "retriever": {"type": "bm25s", "stemmer": None}},
                 {"name": "overlap", "retriever": {"type": "fake-overlap"}}]
    judged_a = {q: QRELS[q] for q in ("q1", "q2", "q3")}
    judged_b = {q: QRELS[q] for q in ("q2", "q3", "q4")}
    a = run(write_dataset(tmp_path / "da", DOCS, QUERIES, judged_a), tmp_path / "A", pipelines)
    b = run(write_dataset(tmp_path / "db", DOCS, QUERIES, judged_b), tmp_path / "B", pipelines)
    index = build_report(a, tmp_path / "cmp", compare_to=b)

    def per_query(folder):
        out = {}
        for r in read_csv(folder / "per_query.csv"):
            out.setdefault((r["pipeline"], r["measure"]), {})[r["qid"]] = float(r["value"])
        return out
    pa, pb = per_query(a), per_query(b)
    means_b = {(r["pipeline"], r["measure"]): float(r["value"])
               for r in read_csv(b / "metrics.csv")}
    rows = read_csv(index.parent / "summary.csv")
    assert {(r["pipeline"], r["measure"]) for r in rows} == set(pa)
    for r in rows:
        key = (r["pipeline"], r["measure"])
        # The same system on the same two queries: A and B agree, Δ is 0 and every query ties.
        assert float(r["delta"]) == 0.0
        assert float(r["a"]) == pytest.approx((pa[key]["q2"] + pa[key]["q3"]) / 2)
        assert float(r["b"]) == pytest.approx((pb[key]["q2"] + pb[key]["q3"]) / 2)
        assert float(r["b"]) > means_b[key]   # B's own mean includes q4, which scores 0
        assert (r["n_queries"], r["only_in_a"], r["only_in_b"]) == ("2", "1", "1")
        assert float(r["p_randomisation"]) == 1.0
        assert r["note"] == "over the 2 common queries (1 only in B, 1 only in A)"
    note = ("The query sets differ: 2 queries are in both folders, 1 only in A, 1 only in B. "
            "Means, Δ and p are over the 2 common queries")
    assert note in (index.parent / "summary.md").read_text()
    assert note in index.read_text()

    # No query in common: nothing to pair, so no Δ rather than a Δ of two unrelated means.
    c = run(write_dataset(tmp_path / "dc", DOCS, QUERIES, {"q4": QRELS["q4"]}), tmp_path / "C",
            pipelines)
    index = build_report(a, tmp_path / "cmp-c", compare_to=c)
    for r in read_csv(index.parent / "summary.csv"):
        assert r["delta"] == r["p_randomisation"] == ""
        assert r["note"] == "no common queries (3 only in A, 1 only in B): no Δ"
