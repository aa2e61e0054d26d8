"""TREC run and qrels files: the formats trec_eval, Anserini and ir_measures exchange.

Run lines are `qid Q0 docid rank score tag`; qrels are TREC (`qid 0 docid grade`) or BEIR TSV
(`query-id corpus-id score`, header optional). Every malformed input is a DataError naming
file:line, so a bad file never turns silently into a wrong score.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterator, Union

from harness.storage.atomic import write_text
from harness.core.errors import DataError
from harness.core.types import Qrels, Run, ranked

PathLike = Union[str, Path]

_INTEGER = re.compile(r"[+-]?\d+")
_WHITESPACE = re.compile(r"\s")


def write_run(path: PathLike, run: Run, tag: str) -> None:
    """Write `run` atomically in trec_eval order; queries keep the order they have in `run`."""
    if not tag or _WHITESPACE.search(tag):
        raise DataError(f"run tag {tag!r} must be non-empty and contain no whitespace")
    lines = []
    for qid, docs in run.items():
        if _WHITESPACE.search(qid) or not qid:
            raise DataError(f"pipeline {tag!r}: query id {qid!r} is empty or contains whitespace; "
                            "it cannot be written to a TREC run file")
        for rank, (doc_id, score) in enumerate(ranked(docs), start=1):
            if _WHITESPACE.search(doc_id) or not doc_id:
                raise DataError(f"pipeline {tag!r}, query {qid!r}: doc id {doc_id!r} is empty or "
                                "contains whitespace; it cannot be written to a TREC run file")
            score = float(score)
            if not math.isfinite(score):
                raise DataError(f"pipeline {tag!r}, query {qid!r}: doc {doc_id!r} has score "
                                f"{score!r}; scores must be finite")
            # repr() is the shortest string that parses back to the same float: no precision lost.
            lines.append(f"{qid} Q0 {doc_id} {rank} {score!r} {tag}\n")
    write_text(path, "".join(lines))


def read_run(path: PathLike) -> Run:
    """Parse a TREC run file. The rank column is ignored, as trec_eval does: order comes from scores."""
    run: Run = {}
    first_seen: dict[tuple[str, str], int] = {}
    for lineno, fields in _data_lines(path):
        where = f"{path}:{lineno}"
        if len(fields) != 6:
            raise DataError(f"{where}: expected 6 columns 'qid Q0 docid rank score tag', "
                            f"got {len(fields)}")
        qid, _, doc_id, _, score_text, _ = fields
        try:
            score = float(score_text)
        except ValueError:
            raise DataError(f"{where}: score {score_text!r} is not a number") from None
        if not math.isfinite(score):
            raise DataError(f"{where}: score {score_text!r} is not finite")
        key = (qid, doc_id)
        if key in first_seen:
            raise DataError(f"{where}: doc {doc_id!r} appears twice for query {qid!r} "
                            f"(first on line {first_seen[key]})")
        first_seen[key] = lineno
        run.setdefault(qid, {})[doc_id] = score
    return run


def read_qrels(path: PathLike) -> Qrels:
    """Parse TREC 4-column or BEIR 3-column qrels; grades must be integers (negative = non-relevant)."""
    qrels: Qrels = {}
    first_seen: dict[tuple[str, str], int] = {}
    n_columns = None
    for lineno, fields in _data_lines(path):
        where = f"{path}:{lineno}"
        if n_columns is None and len(fields) == 3 and not _looks_numeric(fields[2]):
            n_columns = 3  # the BEIR header 'query-id corpus-id score'
            continue
        if len(fields) not in (3, 4):
            raise DataError(f"{where}: expected 'qid 0 docid grade' (TREC) or "
                            f"'query-id corpus-id score' (BEIR), got {len(fields)} columns")
        if n_columns is None:
            n_columns = len(fields)
        elif len(fields) != n_columns:
            raise DataError(f"{where}: {len(fields)} columns where earlier lines have {n_columns}")
        qid, doc_id, grade_text = fields[0], fields[-2], fields[-1]
        if not _INTEGER.fullmatch(grade_text):
            raise DataError(f"{where}: grade {grade_text!r} is not an integer")
        grade = int(grade_text)
        key = (qid, doc_id)
        if key in first_seen:
            previous = qrels[qid][doc_id]
            kind = "duplicate" if previous == grade else f"conflicting (grade {previous} before)"
            raise DataError(f"{where}: {kind} judgment for query {qid!r}, doc {doc_id!r} "
                            f"(first on line {first_seen[key]})")
        first_seen[key] = lineno
        qrels.setdefault(qid, {})[doc_id] = grade
    return qrels


def _data_lines(path: PathLike) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-split fields) of every non-blank line; a UTF-8 BOM is dropped."""
    try:
        handle = open(path, encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        try:
            for lineno, line in enumerate(handle, start=1):
                fields = line.split()
                if fields:
                    yield lineno, fields
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
