import math

import pytest

from harness.core.errors import DataError
from harness.storage.trec import read_qrels, read_run, write_run


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- write_run -------------------------------------------------------------------------------

def test_write_run_uses_trec_eval_order_and_full_precision(tmp_path):
    path = tmp_path / "runs" / "bm25.trec"
    run = {"q2": {"a": 1.0, "c": 1.0, "b": 2.5}, "q1": {"x": 0.1 + 0.2}}
    write_run(path, run, "bm25")
    lines = path.read_text().splitlines()
    # q2 first (given order); b by score, then the tie c/a by doc id descending.
    assert lines == [
        "q2 Q0 b 1 2.5 bm25",
        "q2 Q0 c 2 1.0 bm25",
        "q2 Q0 a 3 1.0 bm25",
        "q1 Q0 x 1 0.30000000000000004 bm25",
    ]
    assert read_run(path) == run
    assert not list(path.parent.glob(".*tmp"))  # the atomic temp file is gone


@pytest.mark.parametrize("run, needle", [
    ({"q1": {"doc 1": 1.0}}, "'doc 1'"),
    ({"q1": {"d\t1": 1.0}}, "whitespace"),
    ({"q 1": {"d1": 1.0}}, "'q 1'"),
    ({"q1": {"d1": math.nan}}, "nan"),
    ({"q1": {"d1": math.inf}}, "inf"),
])
def test_write_run_refuses_bad_ids_and_scores(tmp_path, run, needle):
    path = tmp_path / "bad.trec"
    with pytest.raises(DataError) as info:
        write_run(path, run, "dense-hnsw")
    assert "dense-hnsw" in str(info.value) and needle in str(info.value)
    assert not path.exists()


def test_write_run_error_names_the_query(tmp_path):
    with pytest.raises(DataError, match="query 'q7'"):
        write_run(tmp_path / "r.trec", {"q1": {"d": 1.0}, "q7": {"d": -math.inf}}, "fusion")


# --- read_run --------------------------------------------------------------------------------

def test_read_run_ignores_rank_column_and_blank_lines(tmp_path):
    path = write(tmp_path, "r.trec", "\ufeffq1 Q0 d1 7 -1.5e-3 t\n\nq1 Q0 d2 1 2 t\nq2 Q0 d1 1 3 t\n")
    assert read_run(path) == {"q1": {"d1": -0.0015, "d2": 2.0}, "q2": {"d1": 3.0}}


@pytest.mark.parametrize("text, message", [
    ("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 0.4\n", r"r\.trec:2: expected 6 columns"),
    ("q1 Q0 d1 1 high t\n", r"r\.trec:1: score 'high' is not a number"),
    ("q1 Q0 d1 1 nan t\n", r"r\.trec:1: score 'nan' is not finite"),
    ("q1 Q0 d1 1 -inf t\n", r"r\.trec:1: score '-inf' is not finite"),
    ("q1 Q0 d1 1 3 t\nq2 Q0 d1 1 3 t\nq1 Q0 d1 2 2 t\n",
     r"r\.trec:3: doc 'd1' appears twice for query 'q1' \(first on line 1\)"),
])
def test_read_run_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_run(write(tmp_path, "r.trec", text))


def test_read_run_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_run(tmp_path / "absent.trec")


# --- read_qrels ------------------------------------------------------------------------------

def test_read_qrels_trec_four_columns(tmp_path):
    path = write(tmp_path, "q.txt", "q1 0 d1 2\nq1 0 d2 -1\nq2 0 d3 0\n")
    assert read_qrels(path) == {"q1": {"d1": 2, "d2": -1}, "q2": {"d3": 0}}


def test_read_qrels_beir_tsv_with_header(tmp_path):
    path = write(tmp_path, "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t0\n")
    assert read_qrels(path) == {"q1": {"d1": 1}, "q2": {"d2": 0}}


def test_read_qrels_beir_tsv_without_header_keeps_first_row(tmp_path):
    path = write(tmp_path, "test.tsv", "q1\td1\t1\nq2\td2\t2\n")
    assert read_qrels(path) == {"q1": {"d1": 1}, "q2": {"d2": 2}}


@pytest.mark.parametrize("text, message", [
    ("q1 0 d1 1\nq1 0 d2 1.0\n", r"q\.txt:2: grade '1\.0' is not an integer"),
    ("q1\td1\t0.5\n", r"q\.txt:1: grade '0\.5' is not an integer"),
    ("q1 0 d1 1\nq1 0 d1 1\n", r"q\.txt:2: duplicate judgment .*'q1'.*'d1' \(first on line 1\)"),
    ("q1 0 d1 1\nq2 0 d1 1\nq1 0 d1 0\n",
     r"q\.txt:3: conflicting \(grade 1 before\) judgment .*\(first on line 1\)"),
    ("q1 0 d1 1\nq1 d2 1\n", r"q\.txt:2: 3 columns where earlier lines have 4"),
    ("q1 0 d1 1 extra\n", r"q\.txt:1: expected .* got 5 columns"),
])
def test_read_qrels_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_qrels(write(tmp_path, "q.txt", text))
