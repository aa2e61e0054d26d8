"""Core data types shared by every stage: documents, datasets and runs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

# A run maps query id -> {doc id -> score}. Order inside the dict carries no meaning:
# rankings are always derived from (score desc, doc id desc), trec_eval's rule.
Run = Dict[str, Dict[str, float]]
Qrels = Dict[str, Dict[str, int]]


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str
    # corpus.jsonl `metadata` (e.g. {"source": "aws"}): what filters select on; never searched.
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def full_text(self) -> str:
        """'title text', the field BEIR and Anserini's "flat" indexes search."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


@dataclass
class Dataset:
    name: str
    split: str
    corpus: Dict[str, Document]
    queries: Dict[str, str]
    qrels: Qrels
    checksums: Dict[str, str] = field(default_factory=dict)  # file name -> sha256
    warnings: list[str] = field(default_factory=list)
    stats: Dict[str, int] = field(default_factory=dict)
    query_metadata: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # queries.jsonl
    # (qid, doc id, subtopic, grade) rows of qrels with a `subtopic` column (alpha-nDCG); None
    # when the qrels have none. `qrels` then holds each pair's highest grade.
    subtopics: Optional[List[Tuple[str, str, str, int]]] = None

    def judged_queries(self) -> Dict[str, str]:
        """The queries that have qrels in this split, in qrels order."""
        return {qid: self.queries[qid] for qid in self.qrels}

    def subset(self, query_ids: list[str]) -> "Dataset":
        """Same corpus, only the given judged queries (used by --max-queries)."""
        keep = [q for q in query_ids if q in self.qrels]
        return Dataset(self.name, self.split, self.corpus, {q: self.queries[q] for q in keep},
                       {q: self.qrels[q] for q in keep}, dict(self.checksums),
                       list(self.warnings), dict(self.stats), self.query_metadata,
                       keep_subtopics(self.subtopics, set(keep)))


def keep_subtopics(rows, qids: set) -> Optional[list]:
    return None if rows is None else [r for r in rows if r[0] in qids]


def ranked(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """One query's results in trec_eval order: score descending, then doc id descending."""
    return sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)


def top_k(run: Run, k: int) -> Run:
    """Truncate every ranked list to its first k results (in trec_eval order)."""
    return {qid: dict(ranked(docs)[:k]) for qid, docs in run.items()}
