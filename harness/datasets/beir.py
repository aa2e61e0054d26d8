"""Strict loader for the BEIR folder layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

Each file may be gzipped (`.gz`; the plain file wins when both exist). Every malformed input is a
DataError naming file and line; the rules (ids, texts, NFC, qrels, soft problems counted and
warned) are those of `harness.datasets.rules`. A BOM at the start of a file is dropped.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping, Optional, Union

from harness.core.errors import DataError
from harness.core.types import Dataset, Document, Qrels
from harness.datasets.files import TextLines, find_file
from harness.datasets.rules import (QrelsBuilder, UniqueIds, checked_dataset, metadata_value,
                                    text_value)

QRELS_HEADER = ["query-id", "corpus-id", "score"]
# A 4th column named in the header: each row judges one subtopic (alpha-nDCG, TREC Web diversity).
SUBTOPIC_HEADER = QRELS_HEADER + ["subtopic"]
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
    queries, query_metadata = _read_queries(paths["queries.jsonl"], checksums, "queries.jsonl")
    qrels, subtopics = _read_qrels(qrels_path, queries, checksums, qrels_rel)
    return checked_dataset(name or folder.name, split, corpus, queries, qrels, checksums,
                           str(folder), qrels_rel, query_metadata, subtopics)


def available_splits(folder: Path) -> list[str]:
    names = {p.name.removesuffix(".gz").removesuffix(".tsv") for p in (folder / "qrels").glob("*.tsv*")}
    return sorted(names)


def _require(folder: Path, relative: str) -> Path:
    path = find_file(folder, relative)
    if path is None:
        raise DataError(f"{folder}: missing {relative} (or {relative}.gz); expected the BEIR layout "
                        "corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    return path


def _records(path: Path, checksums: dict[str, str], relative: str):
    """(where, record, id) for each non-blank JSONL line; rejects bad JSON, missing and repeated ids."""
    lines = TextLines(path)
    ids = UniqueIds("_id", "line")
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
        yield where, record, ids.check(record.get("_id"), where, lineno)
    checksums[relative] = lines.sha256


def _read_corpus(path: Path, checksums: dict[str, str], relative: str) -> dict[str, Document]:
    return {doc_id: Document(doc_id, text_value(rec.get("title"), "title", where),
                             text_value(rec.get("text"), "text", where),
                             metadata_value(rec.get("metadata"), where))
            for where, rec, doc_id in _records(path, checksums, relative)}


def _read_queries(path: Path, checksums: dict[str, str],
                  relative: str) -> tuple[dict[str, str], dict[str, dict]]:
    queries, metadata = {}, {}
    for where, rec, qid in _records(path, checksums, relative):
        queries[qid] = text_value(rec.get("text"), "text", where)
        metadata[qid] = metadata_value(rec.get("metadata"), where)
    return queries, metadata


def _read_qrels(path: Path, queries: Mapping[str, str], checksums: dict[str, str],
                relative: str) -> tuple[Qrels, Optional[list]]:
    """BEIR qrels: tab-separated `query-id corpus-id score`, the header row optional; with the
    header `query-id corpus-id score subtopic`, one row per (query, doc, subtopic): the qrels
    then hold each pair's highest grade and the rows are returned for alpha-nDCG."""
    judgments = QrelsBuilder(queries, "queries.jsonl", "corpus-id", "line")
    subtopics: Optional[list] = None
    seen: dict[tuple, int] = {}
    lines = TextLines(path)
    for lineno, line in lines:
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        fields = line.split("\t")
        if lineno == 1 and fields in (QRELS_HEADER, SUBTOPIC_HEADER):
            subtopics = [] if fields == SUBTOPIC_HEADER else None
            continue
        width = 3 if subtopics is None else 4
        if len(fields) != width:
            names = " ".join(SUBTOPIC_HEADER[:width])
            raise DataError(f"{where}: expected {width} tab-separated columns '{names}', "
                            f"got {len(fields)}")
        qid, doc_id, grade_text = fields[:3]
        if not _INTEGER.fullmatch(grade_text):
            raise DataError(f"{where}: score {grade_text!r} is not an integer grade")
        grade = int(grade_text)
        if subtopics is None:
            judgments.add(qid, doc_id, grade, where, lineno)
            continue
        key = (qid, doc_id, fields[3])
        if key in seen:
            raise DataError(f"{where}: query {qid!r}, doc {doc_id!r}, subtopic {fields[3]!r} is "
                            f"judged again (first on line {seen[key]})")
        seen[key] = lineno
        subtopics.append((qid, doc_id, fields[3], grade))
        if doc_id not in judgments.qrels.get(qid, {}):
            judgments.add(qid, doc_id, grade, where, lineno)
        else:
            judgments.qrels[qid][doc_id] = max(grade, judgments.qrels[qid][doc_id])
    checksums[relative] = lines.sha256
    return judgments.qrels, subtopics
