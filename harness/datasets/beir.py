"""Strict loader for the BEIR folder layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

Each file may be gzipped (`.gz`; the plain file wins when both exist). Every malformed input is a
DataError naming file and line. Soft problems (empty texts, judged documents missing from the
corpus) are counted in `Dataset.stats`, listed in `Dataset.warnings` and logged.

Normalisation: titles and texts are NFC-normalised, so visually identical text from differently
composed sources tokenises the same. Ids are kept byte for byte (apart from a file-leading BOM):
changing them would break the link to qrels and to runs produced by other tools.
"""
from __future__ import annotations

import json
import logging
import re
import unicodedata
from pathlib import Path
from typing import Mapping, Optional, Union

from harness.core.errors import DataError
from harness.core.types import Dataset, Document, Qrels
from harness.datasets.files import TextLines, find_file

log = logging.getLogger(__name__)

QRELS_HEADER = ["query-id", "corpus-id", "score"]
_INTEGER = re.compile(r"[+-]?\d+")


def load_beir(folder: Union[str, Path], split: str = "test", name: Optional[str] = None) -> Dataset:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    paths = {rel: _require(folder, rel) for rel in ("corpus.jsonl", "queries.jsonl")}
    qrels_rel = f"qrels/{split}.tsv"
    qrels_path = find_file(folder, qrels_rel)
    if qrels_path is None:
        raise DataError(f"{folder}: no qrels for split {split!r} ({qrels_rel}[.gz]); "
                        f"splits here: {', '.join(available_splits(folder)) or 'none'}")

    checksums: dict[str, str] = {}
    corpus = _read_corpus(paths["corpus.jsonl"], checksums, "corpus.jsonl")
    queries = _read_queries(paths["queries.jsonl"], checksums, "queries.jsonl")
    qrels = _read_qrels(qrels_path, queries, checksums, qrels_rel)

    stats = dataset_stats(corpus, queries, qrels)
    warnings = dataset_warnings(stats, str(folder), split)
    for message in warnings:
        log.warning(message)
    return Dataset(name or folder.name, split, corpus, queries, qrels, checksums, warnings, stats)


def available_splits(folder: Path) -> list[str]:
    names = {p.name.removesuffix(".gz").removesuffix(".tsv") for p in (folder / "qrels").glob("*.tsv*")}
    return sorted(names)


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


def dataset_warnings(stats: Mapping[str, int], where: str, split: str) -> list[str]:
    """Human-readable warnings for the soft problems counted in `stats`."""
    messages = []
    if stats["empty_docs"]:
        messages.append(f"{where}: {stats['empty_docs']} document(s) have no title and no text")
    if stats["empty_queries"]:
        messages.append(f"{where}: {stats['empty_queries']} query(ies) have empty text")
    if stats["qrels_docs_missing"]:
        messages.append(f"{where}: {stats['qrels_docs_missing']} judgment(s) in qrels/{split}.tsv "
                        "name documents missing from the corpus; they are kept (they still count "
                        "in recall's denominator)")
    return messages


def _require(folder: Path, relative: str) -> Path:
    path = find_file(folder, relative)
    if path is None:
        raise DataError(f"{folder}: missing {relative} (or {relative}.gz); expected the BEIR layout "
                        "corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    return path


def _nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def _records(path: Path, checksums: dict[str, str], relative: str):
    """(where, record, id) for each non-blank JSONL line; rejects bad JSON, missing and repeated ids."""
    lines = TextLines(path)
    first_seen: dict[str, int] = {}
    for lineno, line in lines:
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
        record_id = record.get("_id")
        if isinstance(record_id, int) and not isinstance(record_id, bool):
            record_id = str(record_id)  # ids are strings; some exports write numeric ids unquoted
        if not isinstance(record_id, str) or not record_id:
            raise DataError(f"{where}: missing or invalid '_id' (got {record_id!r}); "
                            "expected a non-empty string")
        if record_id in first_seen:
            raise DataError(f"{where}: duplicate _id {record_id!r} (first on line "
                            f"{first_seen[record_id]})")
        first_seen[record_id] = lineno
        yield where, record, record_id
    checksums[relative] = lines.sha256


def _text_field(record: dict, key: str, where: str) -> str:
    """A text field: missing or null reads as ""; any other non-string is an error."""
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    return _nfc(value)


def _read_corpus(path: Path, checksums: dict[str, str], relative: str) -> dict[str, Document]:
    return {doc_id: Document(doc_id, _text_field(rec, "title", where), _text_field(rec, "text", where))
            for where, rec, doc_id in _records(path, checksums, relative)}


def _read_queries(path: Path, checksums: dict[str, str], relative: str) -> dict[str, str]:
    return {qid: _text_field(rec, "text", where)
            for where, rec, qid in _records(path, checksums, relative)}


def _read_qrels(path: Path, queries: Mapping[str, str], checksums: dict[str, str],
                relative: str) -> Qrels:
    """BEIR qrels: tab-separated `query-id corpus-id score`, the header row optional."""
    qrels: Qrels = {}
    first_seen: dict[tuple[str, str], int] = {}
    lines = TextLines(path)
    for lineno, line in lines:
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        fields = line.split("\t")
        if lineno == 1 and fields == QRELS_HEADER:
            continue
        if len(fields) != 3:
            raise DataError(f"{where}: expected 3 tab-separated columns 'query-id corpus-id score', "
                            f"got {len(fields)}")
        qid, doc_id, grade_text = fields
        if not doc_id:
            raise DataError(f"{where}: empty corpus-id")
        if not _INTEGER.fullmatch(grade_text):
            raise DataError(f"{where}: score {grade_text!r} is not an integer grade")
        if qid not in queries:
            raise DataError(f"{where}: query id {qid!r} is not in queries.jsonl")
        key = (qid, doc_id)
        if key in first_seen:
            raise DataError(f"{where}: query {qid!r}, doc {doc_id!r} is judged again (first on line "
                            f"{first_seen[key]}); duplicate or conflicting qrels rows are ambiguous")
        first_seen[key] = lineno
        qrels.setdefault(qid, {})[doc_id] = int(grade_text)
    checksums[relative] = lines.sha256
    return qrels
