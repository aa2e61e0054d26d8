"""Write a run's results folder (layout in docs/results.md); every file atomically."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Iterable, Sequence

from harness.storage.atomic import write_json, write_text
from harness.config import Config, dump
from harness.evaluation.metrics import Evaluation
from harness.storage.trec import write_run
from harness.core.types import Dataset, ranked
from harness.storage.results_folder import layout as L

_SEPARATORS = re.compile(r"[\t\r\n]")


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
        write_text(self.out / "config.yaml", dump(config))

    def dataset_files(self, dataset: Dataset, runs: dict) -> None:
        """qrels, query texts and titles of the documents a report shows (top 10 and judged)."""
        write_text(self.out / L.QRELS, _tsv(
            L.QRELS_HEADER,
            ((q, d, g) for q, docs in dataset.qrels.items() for d, g in docs.items())))
        write_text(self.out / L.QUERIES, _tsv(
            L.QUERIES_HEADER, ((q, t) for q, t in dataset.judged_queries().items())))
        shown = {d for docs in dataset.qrels.values() for d in docs}
        for run in runs.values():
            for docs in run.values():
                shown.update(d for d, _ in ranked(docs)[:10])
        write_text(self.out / L.TITLES, _tsv(
            L.TITLES_HEADER, ((d, _title(dataset, d)) for d in dataset.corpus if d in shown)))

    def metrics(self, evaluations: dict[str, Evaluation]) -> None:
        write_text(self.out / L.METRICS, _csv(
            L.METRICS_HEADER,
            ((p, m, v) for p, ev in evaluations.items() for m, v in ev.aggregate.items())))
        write_text(self.out / L.PER_QUERY, _csv(
            L.PER_QUERY_HEADER,
            ((p, q, m, v) for p, ev in evaluations.items()
             for m, values in ev.per_query.items() for q, v in values.items())))

    def timings(self, rows: Iterable[tuple]) -> None:
        write_text(self.out / L.TIMINGS, _csv(L.TIMINGS_HEADER, rows))

    def run(self, pipeline: str, run: dict) -> str:
        """Write the pipeline's run; returns the path to record as `pipelines.<name>.run_file`."""
        name = f"{L.RUNS_DIR}/{L.run_file_name(pipeline)}"
        write_run(self.out / name, run, L.run_tag(pipeline))
        return name

    def pareto(self, fronts: dict) -> None:
        write_json(self.out / L.PARETO, fronts)

    def metadata(self, metadata: dict) -> None:
        write_json(self.out / L.METADATA, metadata)


def _title(dataset: Dataset, doc_id: str) -> str:
    doc = dataset.corpus[doc_id]
    return doc.title or doc.text[:80]


def _tsv(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """Tab-separated, no quoting: tabs and line breaks inside a value become spaces."""
    lines = ["\t".join(header)]
    lines += ["\t".join(_SEPARATORS.sub(" ", str(v)) for v in row) for row in rows]
    return "\n".join(lines) + "\n"
