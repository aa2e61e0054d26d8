import math
import warnings

import ir_measures
import numpy as np
import pytest
from click.testing import CliRunner

from harness.core.errors import ConfigError, DataError
from harness.evaluation.cli import eval_command
from harness.evaluation.metrics import canonicalize, evaluate, parse_measures, validate_run

MEASURES = ["nDCG@10", "RR@10", "R@3", "R@100", "P@10", "AP"]

# Two tie-heavy queries. trec_eval ranks ties by doc id descending:
#   q1: all five docs score 1.0 -> d5 d4 d3 d2 d1; relevant d3 (grade 2) at rank 3, d1 (grade 1) at 5
#   q2: a=2.0, then b, c, z tied at 1.0 -> a z c b; relevant b at rank 4
TIED_QRELS = {"q1": {"d1": 1, "d3": 2, "d5": 0}, "q2": {"b": 1}}
TIED_RUN = {"q1": {f"d{i}": 1.0 for i in range(1, 6)}, "q2": {"a": 2.0, "b": 1.0, "c": 1.0, "z": 1.0}}

# Hand-checked trec_eval values (nDCG gain = grade, discount log2(rank + 1)):
Q1_NDCG = (2 / math.log2(4) + 1 / math.log2(6)) / (2 / math.log2(2) + 1 / math.log2(3))
Q2_NDCG = (1 / math.log2(5)) / 1.0
EXPECTED_TIED = {
    "nDCG@10": {"q1": Q1_NDCG, "q2": Q2_NDCG},
    "RR@10": {"q1": 1 / 3, "q2": 1 / 4},
    "R@3": {"q1": 1 / 2, "q2": 0.0},          # q1: only d3 in the top 3 of 2 relevant
    "R@100": {"q1": 1.0, "q2": 1.0},
    "P@10": {"q1": 2 / 10, "q2": 1 / 10},     # trec_eval divides by the cutoff, not by |results|
    "AP": {"q1": (1 / 3 + 2 / 5) / 2, "q2": 1 / 4},
}


def test_tied_run_follows_trec_eval_tie_rule_for_every_measure():
    result = evaluate(TIED_QRELS, TIED_RUN, parse_measures(MEASURES))
    assert list(result.aggregate) == MEASURES
    for measure, expected in EXPECTED_TIED.items():
        assert result.per_query[measure] == pytest.approx(expected, abs=1e-12), measure
        assert result.aggregate[measure] == pytest.approx(sum(expected.values()) / 2, abs=1e-12)
    assert result.aggregate["nDCG@10"] < 1.0  # a constant-score run never looks perfect


def test_plain_ir_measures_disagrees_on_rr_for_tied_run():
    # msmarco (RR@10) breaks ties by doc id ascending: q1 -> d1 first (RR 1), q2 -> a b c z (RR 1/2).
    raw = ir_measures.calc_aggregate([ir_measures.parse_measure("RR@10")], TIED_QRELS, TIED_RUN)
    assert list(raw.values()) == [pytest.approx((1 + 1 / 2) / 2)]
    ours = evaluate(TIED_QRELS, TIED_RUN, parse_measures(["RR@10"])).aggregate["RR@10"]
    assert ours == pytest.approx((1 / 3 + 1 / 4) / 2)
    # pytrec_eval (nDCG@10) already follows trec_eval, so there plain ir_measures agrees with us.
    raw_ndcg = ir_measures.calc_aggregate([ir_measures.parse_measure("nDCG@10")], TIED_QRELS, TIED_RUN)
    assert list(raw_ndcg.values()) == [pytest.approx((Q1_NDCG + Q2_NDCG) / 2)]


def test_canonicalize_gives_strictly_decreasing_scores_in_trec_eval_order():
    canonical = canonicalize(TIED_RUN)
    assert list(canonical["q2"].items()) == [("a", 4.0), ("z", 3.0), ("c", 2.0), ("b", 1.0)]
    assert sorted(canonical["q1"], key=canonical["q1"].get, reverse=True) == ["d5", "d4", "d3", "d2", "d1"]
    assert TIED_RUN["q2"]["a"] == 2.0  # the input is not modified


def test_judged_queries_without_results_count_as_zero():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}, "q4": {"d4": 1}}
    run = {"q1": {"d1": 5.0, "x": 1.0}, "q2": {"d2": 1.0}, "q4": {}}  # q3 absent, q4 empty
    result = evaluate(qrels, run, parse_measures(["nDCG@10", "RR@10", "R@100"]))
    assert result.queries_without_results == 2
    for measure in ("nDCG@10", "RR@10", "R@100"):
        assert result.per_query[measure] == {"q1": 1.0, "q2": 1.0, "q3": 0.0, "q4": 0.0}
        assert result.aggregate[measure] == 2 / 4


def test_unjudged_run_query_is_ignored_with_a_warning():
    qrels = {"q1": {"d1": 1}}
    run = {"q1": {"d1": 2.0, "d2": 1.0}, "q9": {"d1": 1.0}}
    with pytest.warns(UserWarning, match="1 run queries have no judgments.*'q9'"):
        result = evaluate(qrels, run, parse_measures(["RR@10"]))
    assert result.unjudged_queries == ["q9"]
    assert result.per_query["RR@10"] == {"q1": 1.0}
    assert result.aggregate["RR@10"] == 1.0


def test_negative_grades_are_non_relevant_and_unjudged_only_queries_count():
    # qa: d1 (grade -1) ranked above d2 (grade 1). qb: only a non-relevant judgment.
    qrels = {"qa": {"d1": -1, "d2": 1}, "qb": {"x": 0}}
    run = {"qa": {"d1": 2.0, "d2": 1.0}, "qb": {"x": 1.0}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing here is unjudged
        result = evaluate(qrels, run, parse_measures(["RR@10", "nDCG@10", "P@10", "AP"]))
    assert result.per_query["RR@10"] == {"qa": 1 / 2, "qb": 0.0}
    # DCG = 0 (grade -1 gains nothing) + 1/log2(3); ideal DCG = 1/log2(2) = 1.
    assert result.per_query["nDCG@10"]["qa"] == pytest.approx(1 / math.log2(3))
    assert result.aggregate["nDCG@10"] == pytest.approx(1 / math.log2(3) / 2)
    assert result.aggregate["P@10"] == pytest.approx((1 / 10 + 0) / 2)
    assert result.aggregate["AP"] == pytest.approx((1 / 2 + 0) / 2)
    assert result.queries_without_results == 0


def test_without_ties_results_equal_ir_measures():
    rng = np.random.default_rng(42)
    docs = [f"doc{i}" for i in range(50)]
    run = {f"q{q}": {d: float(s) for d, s in zip(docs, rng.random(50))} for q in range(20)}
    qrels = {}
    for q in range(20):
        judged = rng.choice(50, size=8, replace=False)
        qrels[f"q{q}"] = {docs[i]: int(g) for i, g in zip(judged, rng.integers(-1, 3, size=8))}
    names = ["nDCG@10", "RR@10", "R@5", "R@100", "AP@100", "P@10", "AP"]
    measures = parse_measures(names)
    ours = evaluate(qrels, run, measures)
    reference = {str(m): v for m, v in ir_measures.calc_aggregate(measures, qrels, run).items()}
    assert ours.aggregate == pytest.approx(reference, abs=1e-9)
    for metric in ir_measures.iter_calc(measures, qrels, run):
        assert ours.per_query[str(metric.measure)][metric.query_id] == pytest.approx(metric.value, abs=1e-9)
    assert all(len(values) == 20 for values in ours.per_query.values())


def test_parse_measures_keeps_order_and_drops_duplicates():
    assert [str(m) for m in parse_measures(["RR@10", " nDCG@10", "RR@10"])] == ["RR@10", "nDCG@10"]


@pytest.mark.parametrize("text", ["ndcg@10", "nDCG@ten", "alpha_nDCG(alpha=2)@10", ""])
def test_parse_measures_rejects_bad_strings_with_examples(text):
    with pytest.raises(ConfigError) as info:
        parse_measures(["P@10", text])
    assert repr(text) in str(info.value) and "nDCG@10, RR@10" in str(info.value)


def test_parse_measures_rejects_empty_list():
    with pytest.raises(ConfigError, match="no measures"):
        parse_measures([])


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_validate_run_names_pipeline_and_query(bad):
    validate_run({"q1": {"d1": 1.0}}, "pipeline 'bm25'")
    with pytest.raises(DataError, match=r"pipeline 'bm25 >> ce', query 'q2'"):
        validate_run({"q1": {"d1": 1.0}, "q2": {"d1": 0.5, "d2": bad}}, "pipeline 'bm25 >> ce'")


def test_empty_qrels_is_an_error():
    with pytest.raises(DataError, match="qrels are empty"):
        evaluate({}, {"q1": {"d": 1.0}}, parse_measures(["P@10"]))


# --- `harness eval` ---------------------------------------------------------------------------

CLI_QRELS = "q1 0 d1 1\nq1 0 d2 0\nq2 0 d3 2\nq3 0 d4 1\n"
# q1: d2 (non-relevant) above d1. q2: d3 and d9 tie, d9 ranks first (doc id descending).
# q3 has no results; q9 is not judged.
CLI_RUN = ("q1 Q0 d2 1 2.0 t\nq1 Q0 d1 2 1.0 t\nq2 Q0 d3 1 1.0 t\nq2 Q0 d9 2 1.0 t\n"
           "q9 Q0 d1 1 5.0 t\n")


def run_eval(tmp_path, *args, qrels=CLI_QRELS, run=CLI_RUN):
    (tmp_path / "qrels.txt").write_text(qrels)
    (tmp_path / "run.trec").write_text(run)
    return CliRunner().invoke(eval_command, ["--qrels", str(tmp_path / "qrels.txt"),
                                             "--run", str(tmp_path / "run.trec"), *args])


def test_eval_cli_prints_means_over_all_judged_queries(tmp_path):
    result = run_eval(tmp_path, "--measures", "RR@10", "-m", "P@10")
    assert result.exit_code == 0, result.output
    # RR@10: q1 1/2, q2 1/2 (d3 second after the tie), q3 0 -> 1/3. P@10: (0.1 + 0.1 + 0) / 3.
    assert result.stdout.splitlines() == [
        "measure  value",
        "RR@10    0.3333",
        "P@10     0.0667",
        "judged queries: 3, without results (scored 0): 1, unjudged in run (ignored): 1",
    ]
    assert "warning: 1 run queries have no judgments" in result.stderr


def test_eval_cli_per_query_rows_and_default_measures(tmp_path):
    result = run_eval(tmp_path, "--per-query", "--digits", "6")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["measure", "query", "value"]
    assert [row[0] for row in lines[1:-1:4]] == ["nDCG@10", "RR@10", "R@100", "R@1000"]
    assert lines[5:9] == [["RR@10", "q1", "0.500000"], ["RR@10", "q2", "0.500000"],
                          ["RR@10", "q3", "0.000000"], ["RR@10", "all", "0.333333"]]


@pytest.mark.parametrize("args, run, message", [
    (["-m", "ndcg@10"], CLI_RUN, "error: invalid measure 'ndcg@10'"),
    ([], "q1 Q0 d1 1 nan t\n", "run.trec:1: score 'nan' is not finite"),
])
def test_eval_cli_reports_errors_without_traceback(tmp_path, args, run, message):
    result = run_eval(tmp_path, *args, run=run)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""


def test_eval_cli_bad_qrels_names_file_and_line(tmp_path):
    result = run_eval(tmp_path, qrels="q1 0 d1 1\nq1 0 d2 0.5\n")
    assert result.exit_code == 1
    assert "qrels.txt:2: grade '0.5' is not an integer" in result.stderr
