"""Shared test setup: offline, quiet, and a cache folder private to the test session."""
import json
import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(items):
    """Ray's tests last. Their driver connects from this process (Ray's native core worker); once,
    a later in-process Lucene search then died of a segfault in a JVM thread. Nothing after them
    starts Lucene here."""
    items.sort(key=lambda item: item.path.name == "test_ray.py")  # stable: order kept otherwise


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Embedding and index caches go to a temp folder unless a run points elsewhere."""
    if "HARNESS_CACHE_DIR" not in os.environ:
        os.environ["HARNESS_CACHE_DIR"] = str(tmp_path_factory.mktemp("harness-cache"))
    yield


@pytest.fixture(scope="session")
def ci_smoke_results(_session_cache, tmp_path_factory) -> Path:
    """configs/ci-smoke.yaml run once per session (no report); the regression smoke test and the
    reference-results test both read this folder, so the slice is not run twice."""
    from click.testing import CliRunner

    from harness.cli import cli
    config = Path(__file__).resolve().parent.parent / "configs" / "ci-smoke.yaml"
    out = tmp_path_factory.mktemp("ci-smoke") / "results"
    started = time.perf_counter()
    res = CliRunner().invoke(cli, ["run", str(config), "--out", str(out), "--no-report"])
    assert res.exit_code == 0, res.output
    print(f"ci-smoke benchmark wall time: {time.perf_counter() - started:.1f} s")
    return out


@pytest.fixture
def tiny_beir(tmp_path):
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    docs = {"d1": "red apples and green pears", "d2": "green tea leaves", "d3": "red wine grapes",
            "d4": "apple pie recipe with red apples", "d5": "pears poached in red wine"}
    with open(folder / "corpus.jsonl", "w") as fh:
        for d, text in docs.items():
            fh.write(json.dumps({"_id": d, "title": "", "text": text}) + "\n")
    queries = {"q1": "red apples", "q2": "green pears", "q3": "red wine", "q4": "zzz unmatched"}
    with open(folder / "queries.jsonl", "w") as fh:
        for q, text in queries.items():
            fh.write(json.dumps({"_id": q, "text": text}) + "\n")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td4\t1\nq1\td1\t1\nq2\td1\t1\nq3\td5\t2\nq3\td3\t1\nq4\td2\t1\n")
    return folder
