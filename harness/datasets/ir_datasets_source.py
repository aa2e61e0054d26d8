"""Datasets from ir_datasets (https://ir-datasets.com) by id, e.g. `beir/scifact/test`.

The records ir_datasets yields go through the same strict rules as a BEIR folder
(`harness.datasets.rules`); an error names the dataset id and the record number. A document keeps
its `title` and `text` fields when it has a `text` field (as BEIR documents do), else its whole
`default_text()` becomes the text; a query is its `text` field, else its `default_text()`; a
judgment is `query_id`, `doc_id` and an integer `relevance`.

ir_datasets downloads and caches files its own way (under $IR_DATASETS_HOME, default
~/.ir_datasets), so the checksums are of the content as loaded: the sha256 of one JSON line per
document `[id, title, text]`, query `[id, text]` and judgment `[query id, doc id, grade]` in
ir_datasets' order, under the keys `docs`, `queries` and `qrels`. Node keys and provenance then
work as for BEIR folders, whose checksums are of their files.

ir_datasets is an optional extra: without it, asking for one of its datasets names the install
command.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import operator
import os
from typing import Any, Callable, Iterator

from harness.core.errors import DataError, HarnessError
from harness.core.types import Dataset, Document, Qrels
from harness.datasets.rules import QrelsBuilder, UniqueIds, checked_dataset, text_value

INSTALL = "pip install 'retrieval-harness[ir_datasets]' (or pip install ir-datasets)"
NAME_PREFIX = "ir_datasets:"
ENTITIES = ("docs", "queries", "qrels")


def load_ir_dataset(dataset_id: str) -> Dataset:
    """Load the documents, queries and judgments of ir_datasets id `dataset_id`."""
    source = _source(dataset_id)
    where = f"ir_datasets {dataset_id!r}"
    checksums: dict[str, str] = {}
    corpus = _read_docs(source, where, checksums)
    queries = _read_queries(source, where, checksums)
    qrels = _read_qrels(source, where, queries, checksums)
    split = dataset_id.rsplit("/", 1)[-1]  # ids end in their split: beir/scifact/test
    return checked_dataset(NAME_PREFIX + dataset_id, split, corpus, queries, qrels, checksums,
                           where, "its qrels")


def ir_datasets_module():
    try:
        import ir_datasets
    except ImportError:
        raise HarnessError(f"dataset.ir_datasets needs the ir_datasets package: {INSTALL}") from None
    return ir_datasets


def _source(dataset_id: str):
    """The ir_datasets Dataset for `dataset_id`, which must have docs, queries and qrels."""
    irds = ir_datasets_module()
    try:
        source = irds.load(dataset_id)
    except KeyError:
        close = difflib.get_close_matches(dataset_id, list(irds.registry), n=5)
        raise HarnessError(f"unknown ir_datasets id {dataset_id!r}"
                           + (f"; close matches: {', '.join(close)}" if close else "")
                           + " (all ids: https://ir-datasets.com)") from None
    missing = [entity for entity in ENTITIES if not source.has(entity)]
    if missing:
        below = [i for i in irds.registry if i.startswith(dataset_id + "/")
                 and all(irds.load(i).has(e) for e in ENTITIES)]
        raise HarnessError(f"ir_datasets {dataset_id!r} has no {' and no '.join(missing)}; a "
                           "benchmark needs documents, queries and judgments"
                           + (f"; ids below it that have all three: {', '.join(below)}" if below else ""))
    return source


def _records(source, entity: str, where: str) -> Iterator[tuple[int, Any]]:
    """(record number from 1, record); ir_datasets' own failures (a download, a parse) become a
    HarnessError naming the id. Errors raised by the caller on a record are not caught here."""
    try:
        yield from enumerate(getattr(source, f"{entity}_iter")(), start=1)
    except Exception as exc:
        raise HarnessError(
            f"{where}: ir_datasets could not provide its {entity}: {type(exc).__name__}: {exc}. "
            "ir_datasets downloads a dataset's files on first use, into "
            f"{os.environ.get('IR_DATASETS_HOME') or '~/.ir_datasets'} ($IR_DATASETS_HOME): that "
            "needs the internet, and a few datasets need files obtained by hand (see "
            "https://ir-datasets.com)") from exc


class _Checksum:
    """sha256 over one canonical JSON line per loaded record."""

    def __init__(self):
        self._hash = hashlib.sha256()

    def add(self, *values) -> None:
        self._hash.update(json.dumps(values, ensure_ascii=False).encode("utf-8") + b"\n")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _text_getter(cls, where: str, entity: str) -> Callable[[Any], Any]:
    """A record's `text` field, else its default_text() (e.g. a TREC topic's title)."""
    if "text" in getattr(cls, "_fields", ()):
        return operator.attrgetter("text")
    if hasattr(cls, "default_text"):
        return lambda record: record.default_text()
    raise DataError(f"{where}: its {entity} ({cls.__name__}) have neither a 'text' field nor a "
                    "default_text()")


def _read_docs(source, where: str, checksums: dict[str, str]) -> dict[str, Document]:
    cls = source.docs_cls()
    text_of = _text_getter(cls, where, "docs")
    # The title stays apart only beside a `text` field: a default_text() already includes it.
    has_title = {"title", "text"} <= set(getattr(cls, "_fields", ()))
    ids, digest = UniqueIds("doc_id", "record"), _Checksum()
    corpus: dict[str, Document] = {}
    for n, record in _records(source, "docs", where):
        at = f"{where} docs record {n}"
        doc_id = ids.check(record.doc_id, at, n)
        title = text_value(record.title, "title", at) if has_title else ""
        doc = corpus[doc_id] = Document(doc_id, title, text_value(text_of(record), "text", at))
        digest.add(doc.doc_id, doc.title, doc.text)
    checksums["docs"] = digest.hexdigest()
    return corpus


def _read_queries(source, where: str, checksums: dict[str, str]) -> dict[str, str]:
    text_of = _text_getter(source.queries_cls(), where, "queries")
    ids, digest = UniqueIds("query_id", "record"), _Checksum()
    queries: dict[str, str] = {}
    for n, record in _records(source, "queries", where):
        at = f"{where} queries record {n}"
        qid = ids.check(record.query_id, at, n)
        queries[qid] = text_value(text_of(record), "text", at)
        digest.add(qid, queries[qid])
    checksums["queries"] = digest.hexdigest()
    return queries


def _read_qrels(source, where: str, queries: dict[str, str], checksums: dict[str, str]) -> Qrels:
    judgments, digest = QrelsBuilder(queries, "its queries", "doc_id", "record"), _Checksum()
    for n, record in _records(source, "qrels", where):
        at = f"{where} qrels record {n}"
        grade = record.relevance
        if not isinstance(grade, int) or isinstance(grade, bool):
            raise DataError(f"{at}: relevance {grade!r} is not an integer grade")
        judgments.add(record.query_id, record.doc_id, grade, at, n)
        digest.add(record.query_id, record.doc_id, grade)
    checksums["qrels"] = digest.hexdigest()
    return judgments.qrels


def list_note() -> str:
    """One line for `harness datasets list`: how to name ir_datasets ids, and whether it is installed."""
    try:
        ir_datasets_module()
        state = "installed"
    except HarnessError:
        state = f"not installed: {INSTALL}"
    return ("ir_datasets ids (e.g. beir/scifact/test; all at https://ir-datasets.com) load with "
            f"`dataset: {{ir_datasets: ID}}` in a config; ir_datasets {state}")
