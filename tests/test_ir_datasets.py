"""ir_datasets as a dataset source, offline: tiny datasets registered with ir_datasets' own API over
local files go through the harness loader, its strict rules and a real benchmark run."""
from __future__ import annotations

import json
import socket
import sys
import unicodedata
import uuid

import pytest
from click.testing import CliRunner

from harness import config as config_mod
from harness.core.errors import ConfigError, DataError, HarnessError
from harness.datasets import load_beir, load_ir_dataset
from harness.datasets.cli import datasets as datasets_cli
from harness.execution.benchmark import run_benchmark

ir_datasets = pytest.importorskip("ir_datasets")
from ir_datasets.datasets.base import Dataset as IrdsDataset  # noqa: E402
from ir_datasets.datasets.beir import BeirDocs, BeirQrels, BeirQueries, BeirTitleDoc  # noqa: E402
from ir_datasets.formats import GenericQuery, TrecQrels, TsvDocs, TsvQueries  # noqa: E402
from ir_datasets.util import Download, LocalDownload, RequestsDownload  # noqa: E402

DOCS = "d1\tred apples\nd2\tgreen tea\nd3\tred wine\n"
QUERIES = "q1\tred apples\nq2\tgreen tea\n"
QRELS = "q1 0 d1 1\nq2 0 d2 2\n"


@pytest.fixture(autouse=True)
def _irds_home(tmp_path, monkeypatch):
    """ir_datasets' cache (docstores, downloads) in the test's folder; one download try, no bar."""
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "irds-home"))
    monkeypatch.setenv("IR_DATASETS_DL_TRIES", "1")
    monkeypatch.setenv("IR_DATASETS_DL_DISABLE_PBAR", "true")


def register(source) -> str:
    """Register `source` under a fresh id (ir_datasets refuses to overwrite one)."""
    dataset_id = f"harness-test/{uuid.uuid4().hex[:10]}/test"
    ir_datasets.registry.register(dataset_id, source)
    return dataset_id


def beir_folder_source(folder, dataset_id_hint: str):
    """ir_datasets' own BEIR handlers (those behind beir/scifact/test) over a local BEIR folder."""
    return IrdsDataset(
        BeirDocs(dataset_id_hint, LocalDownload(folder / "corpus.jsonl"), BeirTitleDoc),
        BeirQueries(dataset_id_hint, LocalDownload(folder / "queries.jsonl"), GenericQuery),
        BeirQrels(LocalDownload(folder / "qrels" / "test.tsv"), {}))


def tsv_source(tmp_path, docs=DOCS, queries=QUERIES, qrels=QRELS, docs_download=None):
    """TSV documents and queries, TREC qrels: ir_datasets' generic formats over files in tmp."""
    folder = tmp_path / f"tsv-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    for name, text in (("docs.tsv", docs), ("queries.tsv", queries), ("qrels.txt", qrels)):
        (folder / name).write_text(text, encoding="utf-8")
    return IrdsDataset(TsvDocs(docs_download or LocalDownload(folder / "docs.tsv")),
                       TsvQueries(LocalDownload(folder / "queries.tsv")),
                       TrecQrels(LocalDownload(folder / "qrels.txt"), {}))


# --- loading ------------------------------------------------------------------------------------

def test_loads_the_same_dataset_as_the_beir_folder(tiny_beir):
    dataset_id = register(beir_folder_source(tiny_beir, uuid.uuid4().hex))
    first = load_ir_dataset(dataset_id)           # ir_datasets builds its docstore
    again = load_ir_dataset(dataset_id)           # and reads it back
    beir = load_beir(tiny_beir)
    assert (first.corpus, first.queries, first.qrels) == (beir.corpus, beir.queries, beir.qrels)
    assert list(first.corpus) == list(beir.corpus)  # order kept
    assert first.stats == beir.stats and first.warnings == []
    assert first.name == f"ir_datasets:{dataset_id}" and first.split == "test"
    assert set(first.checksums) == {"docs", "queries", "qrels"}
    assert again.checksums == first.checksums


def test_checksums_follow_the_content(tmp_path):
    base = load_ir_dataset(register(tsv_source(tmp_path)))
    changed = load_ir_dataset(register(tsv_source(tmp_path, docs=DOCS.replace("green tea", "black tea"))))
    assert changed.checksums["docs"] != base.checksums["docs"]
    assert {k: v for k, v in changed.checksums.items() if k != "docs"} == \
        {k: v for k, v in base.checksums.items() if k != "docs"}


def test_soft_problems_are_counted_and_warned_and_text_is_nfc(tmp_path):
    decomposed = unicodedata.normalize("NFD", "café")
    source = tsv_source(tmp_path, docs=f"d1\t{decomposed}\nd2\t \nd3\tred wine\n",
                        queries="q1\tred\nq2\t\n", qrels=QRELS + "q1 0 gone 1\n")
    dataset_id = register(source)
    ds = load_ir_dataset(dataset_id)
    assert ds.corpus["d1"].text == "café"
    assert (ds.stats["empty_docs"], ds.stats["empty_queries"], ds.stats["qrels_docs_missing"]) == (1, 1, 1)
    assert ds.qrels["q1"] == {"d1": 1, "gone": 1}  # kept: it counts in recall's denominator
    assert len(ds.warnings) == 3 and all(f"ir_datasets {dataset_id!r}" in w for w in ds.warnings)


# --- strict rules: errors name the id and the record ---------------------------------------------

@pytest.mark.parametrize("parts, message", [
    ({"docs": DOCS + "d2\tagain\n"}, "docs record 4: duplicate doc_id 'd2' (first on record 2)"),
    ({"queries": QUERIES + "q1\tagain\n"}, "queries record 3: duplicate query_id 'q1' (first on record 1)"),
    ({"qrels": QRELS + "q9 0 d1 1\n"}, "qrels record 3: query id 'q9' is not in its queries"),
    ({"qrels": QRELS + "q1 0 d1 0\n"}, "qrels record 3: query 'q1', doc 'd1' is judged again "
                                        "(first on record 1)"),
], ids=["duplicate-doc", "duplicate-query", "unknown-query", "judged-twice"])
def test_strict_rule_errors_name_the_dataset_id(tmp_path, parts, message):
    dataset_id = register(tsv_source(tmp_path, **parts))
    with pytest.raises(DataError) as info:
        load_ir_dataset(dataset_id)
    assert str(info.value).startswith(f"ir_datasets {dataset_id!r} {message}")


def test_non_integer_grade_from_ir_datasets_names_the_id(tmp_path):
    dataset_id = register(tsv_source(tmp_path, qrels=QRELS + "q1 0 d3 0.5\n"))
    with pytest.raises(HarnessError, match=rf"ir_datasets '{dataset_id}': ir_datasets could not "
                                           r"provide its qrels: ValueError"):
        load_ir_dataset(dataset_id)


def test_unknown_id_is_named_with_close_matches():
    with pytest.raises(HarnessError) as info:
        load_ir_dataset("beir/scifakt/test")
    message = str(info.value)
    assert "unknown ir_datasets id 'beir/scifakt/test'" in message and "beir/scifact/test" in message


def test_id_without_qrels_names_ids_below_it():
    with pytest.raises(HarnessError) as info:
        load_ir_dataset("beir/scifact")
    assert "'beir/scifact' has no qrels" in str(info.value)
    assert "beir/scifact/test" in str(info.value) and "beir/scifact/train" in str(info.value)


def test_failed_download_names_the_id(tmp_path):
    with socket.socket() as sock:  # bind then close: nothing listens on this port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    remote = Download([RequestsDownload(f"http://127.0.0.1:{port}/docs.tsv")],
                      cache_path=str(tmp_path / "downloads" / "docs.tsv"))
    dataset_id = register(tsv_source(tmp_path, docs_download=remote))
    with pytest.raises(HarnessError) as info:
        load_ir_dataset(dataset_id)
    message = str(info.value)
    assert message.startswith(f"ir_datasets {dataset_id!r}: ir_datasets could not provide its docs")
    assert "ConnectionError" in message and "needs the internet" in message


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ir_datasets", None)  # `import ir_datasets` now fails
    with pytest.raises(HarnessError, match=r"pip install 'retrieval-harness\[ir_datasets\]'"):
        load_ir_dataset("beir/scifact/test")
    result = CliRunner().invoke(datasets_cli, ["list"])
    assert result.exit_code == 0 and "not installed: pip install" in result.output


# --- config and benchmark -----------------------------------------------------------------------

def bm25s_config(dataset: dict, **over):
    return config_mod.validate({
        "name": "irds", "dataset": dataset, "k": 10, "measures": ["nDCG@10", "RR@10", "R@10"],
        "isolation": "none", "timing": {"latency_queries": 0},
        "pipelines": [{"name": "bm25s", "retriever": {"type": "bm25s"}}], **over})


def test_benchmark_metrics_equal_the_beir_folder_run(tiny_beir, tmp_path):
    dataset_id = register(beir_folder_source(tiny_beir, uuid.uuid4().hex))
    via_irds = run_benchmark(bm25s_config({"ir_datasets": dataset_id}), tmp_path / "irds",
                             progress=False)
    via_folder = run_benchmark(bm25s_config({"name": str(tiny_beir)}), tmp_path / "folder",
                               progress=False)
    a, b = via_irds.evaluations["bm25s"], via_folder.evaluations["bm25s"]
    assert a.aggregate == b.aggregate and a.per_query == b.per_query
    assert a.aggregate["nDCG@10"] > 0
    meta = json.loads((via_irds.out_dir / "metadata.json").read_text())
    assert meta["dataset"]["name"] == f"ir_datasets:{dataset_id}"
    assert set(meta["dataset"]["checksums"]) == {"docs", "queries", "qrels"}
    # the saved config reproduces the run
    saved = config_mod.load(via_irds.out_dir / "config.yaml")
    assert saved.dataset.ir_datasets == dataset_id and saved.dataset.name is None


@pytest.mark.parametrize("dataset, message", [
    ({}, "dataset: Value error, give exactly one of `name` or `ir_datasets`"),
    ({"name": "scifact", "ir_datasets": "beir/scifact/test"}, "give exactly one of `name` or `ir_datasets`"),
    ({"ir_datasets": "beir/scifact/test", "split": "dev"}, "`split` ('dev') is not used with `ir_datasets`"),
    ({"ir_datasets": ""}, "dataset.ir_datasets: String should have at least 1 character"),
])
def test_config_takes_exactly_one_source(dataset, message):
    with pytest.raises(ConfigError) as info:
        bm25s_config(dataset)
    assert message in str(info.value)


def test_cli_list_notes_ir_datasets_ids():
    result = CliRunner().invoke(datasets_cli, ["list"])
    assert result.exit_code == 0
    assert "scifact" in result.output and "bundled" in result.output
    assert "dataset: {ir_datasets: ID}" in result.output and "ir_datasets installed" in result.output
