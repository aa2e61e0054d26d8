"""Datasets: strict BEIR loading, bundled data and its checksums, slices, CLI, download (local only)."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import shutil
import socket
import threading
import time
import unicodedata
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

import harness.datasets as datasets_pkg
from harness.datasets import list_datasets, load_beir, load_dataset, slice_dataset
from harness.datasets import download as download_module
from harness.datasets.cli import datasets as datasets_cli
from harness.core.errors import DataError, HarnessError

CORPUS = [
    {"_id": "10", "title": "Alpha", "text": "first document"},
    {"_id": "20", "title": None, "text": "second document"},
    {"_id": "30", "text": "third document, no title"},
]
QUERIES = [{"_id": "1", "text": "alpha?"}, {"_id": "2", "text": "second?"}, {"_id": "3", "text": "x"}]
QRELS = "query-id\tcorpus-id\tscore\n1\t10\t1\n2\t20\t2\n2\t30\t0\n"


def jsonl(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def write_beir(folder: Path, corpus=None, queries=None, qrels=None, split="test",
               compress=False) -> Path:
    """A tiny BEIR folder; each part is a list of records or raw text/bytes (to break on purpose)."""
    parts = {
        "corpus.jsonl": CORPUS if corpus is None else corpus,
        "queries.jsonl": QUERIES if queries is None else queries,
        f"qrels/{split}.tsv": QRELS if qrels is None else qrels,
    }
    for relative, content in parts.items():
        if isinstance(content, list):
            content = jsonl(content)
        data = content.encode("utf-8") if isinstance(content, str) else content
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if compress:
            path = path.with_name(path.name + ".gz")
            data = gzip.compress(data, mtime=0)
        path.write_bytes(data)
    return folder


def load_error(folder: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_beir(folder, **kwargs)
    return str(info.value)


# --- a valid dataset ------------------------------------------------------------------------

def test_loads_tiny_dataset_with_string_ids_in_file_order(tmp_path):
    ds = load_beir(write_beir(tmp_path / "tiny"))
    assert ds.name == "tiny" and ds.split == "test"
    assert list(ds.corpus) == ["10", "20", "30"]
    assert ds.corpus["10"].title == "Alpha"
    assert ds.corpus["20"].title == "" and ds.corpus["30"].title == ""  # null and missing title
    assert ds.queries == {"1": "alpha?", "2": "second?", "3": "x"}
    assert ds.qrels == {"1": {"10": 1}, "2": {"20": 2, "30": 0}}
    assert ds.stats == {"n_docs": 3, "n_queries": 3, "n_judged_queries": 2, "n_qrels": 3,
                        "empty_docs": 0, "empty_queries": 0, "qrels_docs_missing": 0}
    assert ds.warnings == []


def test_checksums_are_of_content_and_gzip_gives_the_same_dataset(tmp_path):
    plain = load_beir(write_beir(tmp_path / "plain"))
    packed = load_beir(write_beir(tmp_path / "packed", compress=True))
    expected = hashlib.sha256((tmp_path / "plain" / "qrels" / "test.tsv").read_bytes()).hexdigest()
    assert set(plain.checksums) == {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv"}
    assert plain.checksums["qrels/test.tsv"] == expected
    assert packed.checksums == plain.checksums
    assert (packed.corpus, packed.queries, packed.qrels) == (plain.corpus, plain.queries, plain.qrels)


def test_plain_file_wins_over_gz(tmp_path):
    folder = write_beir(tmp_path / "both")
    (folder / "corpus.jsonl.gz").write_bytes(b"not gzip at all")
    assert list(load_beir(folder).corpus) == ["10", "20", "30"]


def test_other_split_and_missing_split(tmp_path):
    folder = write_beir(tmp_path / "d", split="dev")
    assert load_beir(folder, split="dev").split == "dev"
    message = load_error(folder, split="test")
    assert "split 'test'" in message and "splits here: dev" in message


def test_missing_corpus_file_is_named(tmp_path):
    folder = write_beir(tmp_path / "d")
    (folder / "corpus.jsonl").unlink()
    assert "missing corpus.jsonl" in load_error(folder)


# --- JSONL errors name file and line --------------------------------------------------------

def test_malformed_jsonl_names_file_and_line(tmp_path):
    corpus = jsonl(CORPUS[:2]) + '{"_id": "30", "text": \n'
    message = load_error(write_beir(tmp_path / "d", corpus=corpus))
    assert f"{tmp_path / 'd' / 'corpus.jsonl'}:3: invalid JSON" in message


def test_non_object_line_is_an_error(tmp_path):
    queries = jsonl(QUERIES) + "[1, 2]\n"
    assert "queries.jsonl:4: expected a JSON object" in load_error(write_beir(tmp_path / "d", queries=queries))


@pytest.mark.parametrize("bad_id", [None, "", 1.5, ["x"]])
def test_missing_or_invalid_id_names_file_and_line(tmp_path, bad_id):
    record = {"text": "no id"} if bad_id is None else {"_id": bad_id, "text": "bad id"}
    message = load_error(write_beir(tmp_path / "d", corpus=CORPUS + [record]))
    assert "corpus.jsonl:4: missing or invalid '_id'" in message


def test_duplicate_id_names_both_lines(tmp_path):
    corpus = CORPUS + [{"_id": "20", "title": "again", "text": "dup"}]
    message = load_error(write_beir(tmp_path / "d", corpus=corpus))
    assert "corpus.jsonl:4: duplicate _id '20' (first on line 2)" in message


def test_duplicate_query_id_names_both_lines(tmp_path):
    queries = [QUERIES[0], QUERIES[1], QUERIES[0]]
    assert "queries.jsonl:3: duplicate _id '1' (first on line 1)" in load_error(
        write_beir(tmp_path / "d", queries=queries))


def test_non_string_text_is_an_error(tmp_path):
    corpus = CORPUS + [{"_id": "40", "title": "t", "text": 42}]
    assert "corpus.jsonl:4: field 'text' must be a string" in load_error(
        write_beir(tmp_path / "d", corpus=corpus))


def test_numeric_ids_stay_strings(tmp_path):
    corpus = [{"_id": 7, "text": "int id"}, {"_id": "007", "text": "string id"}]
    qrels = "1\t007\t1\n"
    ds = load_beir(write_beir(tmp_path / "d", corpus=corpus, qrels=qrels))
    assert list(ds.corpus) == ["7", "007"]
    assert ds.qrels == {"1": {"007": 1}}


def test_blank_lines_are_skipped(tmp_path):
    ds = load_beir(write_beir(tmp_path / "d", corpus=jsonl(CORPUS[:1]) + "\n  \n" + jsonl(CORPUS[1:])))
    assert list(ds.corpus) == ["10", "20", "30"]


# --- soft problems: counted and warned ------------------------------------------------------

def test_empty_documents_and_queries_are_counted_and_warned(tmp_path, caplog):
    corpus = CORPUS + [{"_id": "40", "title": "", "text": "   "}, {"_id": "50", "title": None}]
    queries = QUERIES + [{"_id": "4", "text": ""}]
    with caplog.at_level(logging.WARNING, logger="harness.datasets"):
        ds = load_beir(write_beir(tmp_path / "d", corpus=corpus, queries=queries))
    assert ds.stats["empty_docs"] == 2 and ds.stats["empty_queries"] == 1
    assert ds.corpus["50"].text == ""
    assert any("2 document(s) have no title and no text" in w for w in ds.warnings)
    assert any("1 query(ies) have empty text" in w for w in ds.warnings)
    assert len(caplog.records) == 2


def test_qrels_doc_missing_from_corpus_is_kept_with_a_counted_warning(tmp_path, caplog):
    qrels = QRELS + "3\tgone-1\t1\n3\tgone-2\t1\n"
    with caplog.at_level(logging.WARNING, logger="harness.datasets"):
        ds = load_beir(write_beir(tmp_path / "d", qrels=qrels))
    assert ds.qrels["3"] == {"gone-1": 1, "gone-2": 1}
    assert ds.stats["qrels_docs_missing"] == 2
    assert "2 judgment(s)" in ds.warnings[0] and "2 judgment(s)" in caplog.text


# --- qrels ---------------------------------------------------------------------------------

def test_qrels_query_missing_from_queries_is_an_error(tmp_path):
    message = load_error(write_beir(tmp_path / "d", qrels=QRELS + "99\t10\t1\n"))
    assert f"{tmp_path / 'd' / 'qrels' / 'test.tsv'}:5: query id '99' is not in queries.jsonl" in message


def test_qrels_without_header_keeps_its_first_row(tmp_path):
    ds = load_beir(write_beir(tmp_path / "d", qrels="1\t10\t1\n2\t20\t1\n"))
    assert ds.qrels == {"1": {"10": 1}, "2": {"20": 1}}


def test_qrels_header_only_on_first_line(tmp_path):
    message = load_error(write_beir(tmp_path / "d", qrels=QRELS + "query-id\tcorpus-id\tscore\n"))
    assert "test.tsv:5: score 'score' is not an integer grade" in message


@pytest.mark.parametrize("grade", ["1.5", "1.0", "high", ""])
def test_non_integer_grade_names_file_and_line(tmp_path, grade):
    message = load_error(write_beir(tmp_path / "d", qrels=f"1\t10\t1\n2\t20\t{grade}\n"))
    assert f"test.tsv:2: score {grade!r} is not an integer grade" in message


def test_negative_grades_are_kept_as_ints(tmp_path):
    ds = load_beir(write_beir(tmp_path / "d", qrels="1\t10\t-1\n2\t20\t+2\n"))
    assert ds.qrels == {"1": {"10": -1}, "2": {"20": 2}}
    assert all(type(g) is int for docs in ds.qrels.values() for g in docs.values())


@pytest.mark.parametrize("repeat", ["1\t10\t1", "1\t10\t0"], ids=["duplicate", "conflicting"])
def test_repeated_qrels_row_names_both_lines(tmp_path, repeat):
    message = load_error(write_beir(tmp_path / "d", qrels=QRELS + repeat + "\n"))
    assert "test.tsv:5: query '1', doc '10' is judged again (first on line 2)" in message


@pytest.mark.parametrize("row", ["1\t10", "1\t0\t10\t1", "1 10 1"])
def test_wrong_column_count_names_file_and_line(tmp_path, row):
    message = load_error(write_beir(tmp_path / "d", qrels=QRELS + row + "\n"))
    assert "test.tsv:5: expected 3 tab-separated columns" in message


def test_qrels_crlf_line_endings(tmp_path):
    ds = load_beir(write_beir(tmp_path / "d", qrels=QRELS.replace("\n", "\r\n")))
    assert ds.qrels == {"1": {"10": 1}, "2": {"20": 2, "30": 0}}


# --- UTF-8 ---------------------------------------------------------------------------------

def test_bom_is_stripped_and_first_id_kept(tmp_path):
    bom = "\ufeff"
    ds = load_beir(write_beir(tmp_path / "d", corpus=bom + jsonl(CORPUS), queries=bom + jsonl(QUERIES),
                              qrels=bom + QRELS))
    assert list(ds.corpus)[0] == "10" and list(ds.queries)[0] == "1"
    assert ds.qrels == {"1": {"10": 1}, "2": {"20": 2, "30": 0}}  # header recognised after the BOM


def test_invalid_utf8_names_file_and_line(tmp_path):
    corpus = jsonl(CORPUS[:2]).encode() + b'{"_id": "30", "text": "caf\xe9"}\n'
    message = load_error(write_beir(tmp_path / "d", corpus=corpus))
    assert "corpus.jsonl:3: not valid UTF-8" in message


def test_invalid_utf8_in_gzipped_qrels_names_file_and_line(tmp_path):
    qrels = QRELS.encode() + b"3\t\xff\t1\n"
    message = load_error(write_beir(tmp_path / "d", qrels=qrels, compress=True))
    assert "test.tsv.gz:5: not valid UTF-8" in message


def test_text_is_nfc_normalised_but_ids_are_not(tmp_path):
    decomposed = unicodedata.normalize("NFD", "café")
    corpus = [{"_id": decomposed, "title": decomposed, "text": f"{decomposed} au lait"}]
    queries = [{"_id": "1", "text": decomposed}]
    qrels = f"1\t{decomposed}\t1\n"
    ds = load_beir(write_beir(tmp_path / "d", corpus=corpus, queries=queries, qrels=qrels))
    doc = ds.corpus[decomposed]
    assert doc.title == "café" and doc.text == "café au lait" and ds.queries["1"] == "café"
    assert doc.title != decomposed
    assert ds.qrels == {"1": {decomposed: 1}}
    assert ds.stats["qrels_docs_missing"] == 0


def test_truncated_gzip_is_a_data_error(tmp_path):
    folder = write_beir(tmp_path / "d", compress=True)
    packed = folder / "corpus.jsonl.gz"
    packed.write_bytes(packed.read_bytes()[:-12])
    assert "corpus.jsonl.gz" in load_error(folder)


# --- bundled datasets -----------------------------------------------------------------------

def test_bundled_scifact_counts_checksums_and_speed():
    start = time.perf_counter()
    ds = load_dataset("scifact")
    elapsed = time.perf_counter() - start
    assert ds.name == "scifact"
    assert (ds.stats["n_docs"], ds.stats["n_queries"]) == (5183, 1109)
    assert (ds.stats["n_judged_queries"], ds.stats["n_qrels"]) == (300, 339)
    assert ds.stats["qrels_docs_missing"] == 0 and ds.warnings == []
    assert ds.checksums["corpus.jsonl"].startswith("dec31c81")  # the official BEIR corpus
    assert all(isinstance(doc_id, str) for doc_id in ds.corpus)
    assert elapsed < 2.0, f"loading SciFact took {elapsed:.2f} s"


def test_bundled_scifact_train_split():
    ds = load_dataset("scifact", split="train")
    assert (ds.stats["n_judged_queries"], ds.stats["n_qrels"]) == (809, 919)


def test_bundled_cloud_faq_counts():
    ds = load_dataset("cloud-faq")
    assert (ds.stats["n_docs"], ds.stats["n_queries"]) == (8489, 8498)
    assert (ds.stats["n_judged_queries"], ds.stats["n_qrels"]) == (2177, 2177)
    assert all(len(docs) == 1 for docs in ds.qrels.values())


def test_bundled_checksums_match_listing():
    for name in ("scifact", "cloud-faq"):
        folder = datasets_pkg.bundled_dir() / name
        listed = dict(reversed(line.split()) for line in (folder / "SHA256SUMS").read_text().splitlines())
        for relative, digest in listed.items():
            content = gzip.decompress((folder / f"{relative}.gz").read_bytes())
            assert hashlib.sha256(content).hexdigest() == digest, relative


@pytest.fixture
def bundled_copy(tmp_path, monkeypatch) -> Path:
    """A copy of bundled SciFact that `load_dataset('scifact')` reads instead of the package's."""
    root = tmp_path / "bundled"
    shutil.copytree(datasets_pkg.bundled_dir() / "scifact", root / "scifact")
    monkeypatch.setattr(datasets_pkg, "bundled_dir", lambda: root)
    return root / "scifact"


def test_tampered_bundled_file_fails_checksum(bundled_copy):
    queries = bundled_copy / "queries.jsonl.gz"
    text = gzip.decompress(queries.read_bytes()).decode()
    # Still valid JSONL: only the checksum can notice.
    queries.write_bytes(gzip.compress(text.replace("biomaterials", "biomaterial", 1).encode(), mtime=0))
    with pytest.raises(DataError, match=r"queries\.jsonl\.gz: checksum mismatch"):
        load_dataset("scifact")


def test_untampered_copy_loads(bundled_copy):
    assert load_dataset("scifact").stats["n_docs"] == 5183


# --- load_dataset resolution ----------------------------------------------------------------

def test_load_dataset_by_path(tmp_path):
    folder = write_beir(tmp_path / "mine")
    assert load_dataset(str(folder)).name == "mine"


def test_load_dataset_finds_downloaded_name(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "cache"))
    write_beir(tmp_path / "cache" / "cqadupstack" / "android")
    ds = load_dataset("cqadupstack/android")
    assert ds.name == "cqadupstack/android" and ds.stats["n_docs"] == 3


def test_unknown_dataset_names_the_choices(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(HarnessError) as info:
        load_dataset("no-such-dataset")
    message = str(info.value)
    assert "'no-such-dataset'" in message and "scifact" in message and "nfcorpus" in message


def test_list_datasets_shows_bundled_then_downloadable(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache" / "fiqa").mkdir(parents=True)
    entries = {e.name: e.status for e in list_datasets()}
    assert entries["scifact"] == "bundled" and entries["cloud-faq"] == "bundled"
    assert entries["fiqa"] == "downloaded" and entries["nfcorpus"] == "downloadable"


# --- slices ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scifact():
    return load_dataset("scifact")


def test_slice_is_deterministic_and_complete(scifact):
    a = slice_dataset(scifact, 20, 50, seed=3)
    b = slice_dataset(scifact, 20, 50, seed=3)
    assert a.name == "scifact[q20+d50,seed3]"
    assert (a.corpus, a.queries, a.qrels) == (b.corpus, b.queries, b.qrels)
    assert len(a.qrels) == 20 and set(a.queries) == set(a.qrels)
    judged = {d for docs in a.qrels.values() for d in docs}
    assert judged <= set(a.corpus)
    assert len(a.corpus) == len(judged) + 50
    assert list(a.corpus) == [d for d in scifact.corpus if d in a.corpus]  # file order kept
    assert a.stats["n_docs"] == len(a.corpus) and a.stats["n_qrels"] == sum(map(len, a.qrels.values()))
    assert a.checksums == scifact.checksums


def test_slice_seed_changes_the_sample(scifact):
    assert set(slice_dataset(scifact, 20, 50, seed=0).qrels) != set(slice_dataset(scifact, 20, 50, seed=1).qrels)


def test_slice_larger_than_dataset_is_an_error(scifact):
    with pytest.raises(HarnessError, match="300 judged queries"):
        slice_dataset(scifact, 301, 0)


# --- CLI ------------------------------------------------------------------------------------

def test_cli_list():
    result = CliRunner().invoke(datasets_cli, ["list"])
    assert result.exit_code == 0
    assert "scifact" in result.output and "bundled" in result.output and "msmarco" in result.output


def test_cli_info_prints_counts_and_checksums():
    result = CliRunner().invoke(datasets_cli, ["info", "scifact"])
    assert result.exit_code == 0, result.output
    assert "n_docs: 5183" in result.output and "n_judged_queries: 300" in result.output
    assert "dec31c8182f3d744c7d2c09423756fd1d17cbef75808db13ba01cc0aab4d1ac6  corpus.jsonl" in result.output


def test_cli_info_prints_warnings(tmp_path):
    folder = write_beir(tmp_path / "d", qrels=QRELS + "3\tgone\t1\n")
    result = CliRunner().invoke(datasets_cli, ["info", str(folder)])
    assert result.exit_code == 0 and "warnings: 1" in result.output


def test_cli_info_invalid_data_exits_1_with_the_error(tmp_path):
    folder = write_beir(tmp_path / "d", qrels=QRELS + "1\t10\t0.5\n")
    result = CliRunner().invoke(datasets_cli, ["info", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "test.tsv:5" in result.stderr
    assert "Traceback" not in result.output


# --- download (local server only) -----------------------------------------------------------

def tiny_zip(top: str = "tiny") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{top}/corpus.jsonl", jsonl(CORPUS))
        archive.writestr(f"{top}/queries.jsonl", jsonl(QUERIES))
        archive.writestr(f"{top}/qrels/test.tsv", QRELS)
    return buffer.getvalue()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields (base URL, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tiny_table(monkeypatch):
    """Adds 'tiny' to the checksum table with the md5 of tiny_zip()."""
    data = tiny_zip()
    monkeypatch.setitem(download_module.BEIR_MD5, "tiny", hashlib.md5(data).hexdigest())
    return data


def test_download_verifies_extracts_and_reuses(server, tiny_table, tmp_path):
    url, www = server
    (www / "tiny.zip").write_bytes(tiny_table)
    cache = tmp_path / "cache"
    folder = download_module.download("tiny", cache_dir=cache, base_url=url)
    assert folder == cache / "tiny"
    assert load_beir(folder).stats["n_qrels"] == 3
    assert sorted(p.name for p in cache.iterdir()) == ["tiny"]  # no temp files left
    (www / "tiny.zip").unlink()
    assert download_module.download("tiny", cache_dir=cache, base_url=url) == folder


def test_download_uses_env_cache_dir_and_base_url(server, tiny_table, tmp_path, monkeypatch):
    url, www = server
    (www / "tiny.zip").write_bytes(tiny_table)
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "env-cache"))
    monkeypatch.setenv("HARNESS_BEIR_BASE_URL", url + "/")
    assert download_module.download("tiny") == tmp_path / "env-cache" / "tiny"
    assert load_dataset("tiny").stats["n_docs"] == 3


def test_download_checksum_mismatch_leaves_nothing(server, tiny_table, tmp_path):
    url, www = server
    (www / "tiny.zip").write_bytes(tiny_zip(top="other"))  # a different archive
    cache = tmp_path / "cache"
    with pytest.raises(HarnessError, match="checksum mismatch"):
        download_module.download("tiny", cache_dir=cache, base_url=url)
    assert list(cache.iterdir()) == []


def closed_port() -> int:
    with socket.socket() as sock:  # bind then close: nothing listens on this port
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_download_unreachable_server_says_offline(tiny_table, tmp_path):
    port = closed_port()
    cache = tmp_path / "cache"
    with pytest.raises(HarnessError) as info:
        download_module.download("tiny", cache_dir=cache, base_url=f"http://127.0.0.1:{port}")
    message = str(info.value)
    assert f"cannot reach http://127.0.0.1:{port}/tiny.zip" in message
    assert "Offline?" in message and "pass the folder path" in message
    assert list(cache.iterdir()) == []


def test_download_http_404_is_a_harness_error(server, tiny_table, tmp_path):
    url, _ = server
    cache = tmp_path / "cache"
    with pytest.raises(HarnessError, match=r"tiny\.zip failed: HTTP 404 .*pass the folder path"):
        download_module.download("tiny", cache_dir=cache, base_url=url)
    assert list(cache.iterdir()) == []


def test_download_rejects_paths_escaping_the_archive(server, tmp_path, monkeypatch):
    url, www = server
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escaped.txt", "x")
    (www / "tiny.zip").write_bytes(buffer.getvalue())
    monkeypatch.setitem(download_module.BEIR_MD5, "tiny", hashlib.md5(buffer.getvalue()).hexdigest())
    cache = tmp_path / "cache"
    with pytest.raises(HarnessError, match="escapes"):
        download_module.download("tiny", cache_dir=cache, base_url=url)
    assert list(cache.iterdir()) == [] and not (tmp_path / "escaped.txt").exists()


def test_download_unknown_name_lists_choices(tmp_path):
    with pytest.raises(HarnessError, match="choices: .*nfcorpus"):
        download_module.download("not-beir", cache_dir=tmp_path)


def test_download_table_has_the_public_beir_zips():
    expected = {"scifact", "nfcorpus", "fiqa", "arguana", "trec-covid", "scidocs", "quora", "nq",
                "hotpotqa", "msmarco", "dbpedia-entity", "fever", "climate-fever",
                "webis-touche2020", "cqadupstack"}
    assert expected <= set(download_module.BEIR_MD5)
    assert all(len(md5) == 32 and int(md5, 16) >= 0 for md5 in download_module.BEIR_MD5.values())


def test_cli_download_error_exits_1(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_BEIR_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    result = CliRunner().invoke(datasets_cli, ["download", "scifact", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1 and result.stderr.startswith("error: cannot reach")
