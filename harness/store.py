"""Write a run's results folder (layout in docs/results.md); every file atomically."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Iterable, Sequence

import yaml

from .atomic import write_json, write_text
from .config import Config
from .evaluation.metrics import Evaluation
from .trec import write_run
from .types import Dataset, ranked

_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def run_file_name(pipeline: str) -> str:
    """A file name for a pipeline's run: readable, and unique for distinct pipeline names."""
    from .hashing import stable_hash
    safe = _UNSAFE.sub("_", pipeline).strip("_")
    return f"{safe}.trec" if safe == pipeline else f"{safe}-{stable_hash(pipeline)[:8]}.trec"


def _csv(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:  # floats as repr: the shortest text that reads back as the same number
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


class ResultsWriter:
    def __init__(self, out_dir: Path):
        self.out = Path(out_dir)

    def config(self, config: Config) -> None:
        from .config import dump
        write_text(self.out / "config.yaml", dump(config))

    def dataset_files(self, dataset: Dataset, runs: dict) -> None:
        """qrels, query texts and titles of the documents a report shows (top 10 and judged)."""
        write_text(self.out / "qrels.tsv", _csv_tsv(
            ("query-id", "corpus-id", "score"),
            ((q, d, g) for q, docs in dataset.qrels.items() for d, g in docs.items())))
        write_text(self.out / "queries.tsv", _csv_tsv(
            ("query-id", "text"), ((q, t) for q, t in dataset.judged_queries().items())))
        shown = {d for docs in dataset.qrels.values() for d in docs}
        for run in runs.values():
            for docs in run.values():
                shown.update(d for d, _ in ranked(docs)[:10])
        write_text(self.out / "titles.tsv", _csv_tsv(
            ("corpus-id", "title"),
            ((d, _title(dataset, d)) for d in dataset.corpus if d in shown)))

    def metrics(self, evaluations: dict[str, Evaluation]) -> None:
        write_text(self.out / "metrics.csv", _csv(
            ("pipeline", "measure", "value"),
            ((p, m, v) for p, ev in evaluations.items() for m, v in ev.aggregate.items())))
        write_text(self.out / "per_query.csv", _csv(
            ("pipeline", "qid", "measure", "value"),
            ((p, q, m, v) for p, ev in evaluations.items()
             for m, values in ev.per_query.items() for q, v in values.items())))

    def timings(self, rows: Iterable[tuple]) -> None:
        write_text(self.out / "timings.csv",
                   _csv(("pipeline", "stage", "mode", "stat", "value"), rows))

    def run(self, pipeline: str, run: dict) -> str:
        name = run_file_name(pipeline)
        write_run(self.out / "runs" / name, run, _UNSAFE.sub("_", pipeline))
        return f"runs/{name}"

    def pareto(self, fronts: dict) -> None:
        write_json(self.out / "pareto.json", fronts)

    def metadata(self, metadata: dict) -> None:
        write_json(self.out / "metadata.json", metadata)


def _title(dataset: Dataset, doc_id: str) -> str:
    doc = dataset.corpus[doc_id]
    return doc.title or doc.text[:80]


def _csv_tsv(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    lines = ["\t".join(header)]
    lines += ["\t".join(str(v).replace("\t", " ").replace("\n", " ") for v in row) for row in rows]
    return "\n".join(lines) + "\n"
