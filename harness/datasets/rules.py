"""The strict rules every dataset loader applies, whatever the source (a BEIR folder, ir_datasets).

Hard problems are a DataError whose message starts with where the record came from (file and line,
or dataset id and record number): a missing, invalid or repeated id, a non-string text, a judged
query that is not among the queries, a (query, document) pair judged twice. Soft problems (empty
texts, judged documents missing from the corpus) are counted in `Dataset.stats`, listed in
`Dataset.warnings` and logged.

Titles and texts are NFC-normalised, so visually identical text from differently composed sources
tokenises the same. Ids are kept byte for byte: changing them would break the link to qrels and to
runs produced by other tools.
"""
from __future__ import annotations

import logging
import unicodedata
from typing import Any, Mapping

from harness.core.errors import DataError
from harness.core.types import Dataset, Document, Qrels

log = logging.getLogger(__name__)


def nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def text_value(value: Any, key: str, where: str) -> str:
    """A text field: missing or null reads as ""; any other non-string is an error."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    return nfc(value)


class UniqueIds:
    """The ids of one record stream: non-empty strings, each seen once.

    `field` names the id in messages; `unit` is what a position counts ("line", "record").
    """

    def __init__(self, field: str, unit: str):
        self.field, self.unit = field, unit
        self._first: dict[str, int] = {}

    def check(self, value: Any, where: str, position: int) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # ids are strings; some exports write numeric ids unquoted
        if not isinstance(value, str) or not value:
            raise DataError(f"{where}: missing or invalid {self.field!r} (got {value!r}); "
                            "expected a non-empty string")
        if value in self._first:
            raise DataError(f"{where}: duplicate {self.field} {value!r} (first on {self.unit} "
                            f"{self._first[value]})")
        self._first[value] = position
        return value


class QrelsBuilder:
    """Judgments in arrival order: every query id must be in `queries` (`queries_source` names them
    in the error) and each (query, document) pair is judged once."""

    def __init__(self, queries: Mapping[str, str], queries_source: str, doc_field: str, unit: str):
        self.queries, self.queries_source = queries, queries_source
        self.doc_field, self.unit = doc_field, unit
        self.qrels: Qrels = {}
        self._first: dict[tuple[str, str], int] = {}

    def add(self, qid: str, doc_id: str, grade: int, where: str, position: int) -> None:
        if not isinstance(doc_id, str) or not doc_id:
            raise DataError(f"{where}: missing or invalid {self.doc_field} (got {doc_id!r})")
        if qid not in self.queries:
            raise DataError(f"{where}: query id {qid!r} is not in {self.queries_source}")
        key = (qid, doc_id)
        if key in self._first:
            raise DataError(f"{where}: query {qid!r}, doc {doc_id!r} is judged again (first on "
                            f"{self.unit} {self._first[key]}); duplicate or conflicting qrels rows "
                            "are ambiguous")
        self._first[key] = position
        self.qrels.setdefault(qid, {})[doc_id] = grade


def dataset_stats(corpus: Mapping[str, Document], queries: Mapping[str, str],
                  qrels: Qrels) -> dict[str, int]:
    """The counts every Dataset carries; a document is empty when title and text are both blank."""
    return {
        "n_docs": len(corpus),
        "n_queries": len(queries),
        "n_judged_queries": len(qrels),
        "n_qrels": sum(len(docs) for docs in qrels.values()),
        "empty_docs": sum(1 for d in corpus.values() if not d.full_text.strip()),
        "empty_queries": sum(1 for text in queries.values() if not text.strip()),
        "qrels_docs_missing": sum(1 for docs in qrels.values() for d in docs if d not in corpus),
    }


def dataset_warnings(stats: Mapping[str, int], where: str, qrels_source: str) -> list[str]:
    """Human-readable warnings for the soft problems counted in `stats`; `qrels_source` names
    the judgments (e.g. `qrels/test.tsv`)."""
    messages = []
    if stats["empty_docs"]:
        messages.append(f"{where}: {stats['empty_docs']} document(s) have no title and no text")
    if stats["empty_queries"]:
        messages.append(f"{where}: {stats['empty_queries']} query(ies) have empty text")
    if stats["qrels_docs_missing"]:
        messages.append(f"{where}: {stats['qrels_docs_missing']} judgment(s) in {qrels_source} "
                        "name documents missing from the corpus; they are kept (they still count "
                        "in recall's denominator)")
    return messages


def checked_dataset(name: str, split: str, corpus: dict[str, Document], queries: dict[str, str],
                    qrels: Qrels, checksums: dict[str, str], where: str,
                    qrels_source: str, query_metadata: dict | None = None,
                    subtopics: list | None = None) -> Dataset:
    """The Dataset with its stats and warnings; each warning is also logged."""
    stats = dataset_stats(corpus, queries, qrels)
    warnings = dataset_warnings(stats, where, qrels_source)
    for message in warnings:
        log.warning(message)
    return Dataset(name, split, corpus, queries, qrels, checksums, warnings, stats,
                   query_metadata or {}, subtopics)


def metadata_value(value: Any, where: str) -> dict:
    """A record's `metadata`: missing or null reads as {}; anything but a JSON object is an
    error (filters select on its fields)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DataError(f"{where}: field 'metadata' must be a JSON object, got "
                        f"{type(value).__name__}")
    return value
