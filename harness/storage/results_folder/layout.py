"""The results folder's layout (docs/results.md): file names, table headers, the names used in
timings.csv and metadata.json, and the rule that names each pipeline's TREC run file."""
from __future__ import annotations

import re

from harness.core.hashing import stable_hash

# -- files ------------------------------------------------------------------------------------
CONFIG = "config.yaml"
METADATA = "metadata.json"
METRICS = "metrics.csv"
PER_QUERY = "per_query.csv"
TIMINGS = "timings.csv"
PARETO = "pareto.json"
RUNS_DIR = "runs"
QRELS = "qrels.tsv"          # side files for reports: queries and documents without the dataset
QUERIES = "queries.tsv"
TITLES = "titles.tsv"

METRICS_HEADER = ("pipeline", "measure", "value")
PER_QUERY_HEADER = ("pipeline", "qid", "measure", "value")
TIMINGS_HEADER = ("pipeline", "stage", "mode", "stat", "value")
QRELS_HEADER = ("query-id", "corpus-id", "score")
QUERIES_HEADER = ("query-id", "text")
TITLES_HEADER = ("corpus-id", "title")

# -- timings.csv ------------------------------------------------------------------------------
# Stages. A fusion's first stages carry their input position: `index.1`, `first_stage.2`, ...
INDEX, FIRST_STAGE, FUSION, RERANK, TOTAL, ANN_SEARCH = (
    "index", "first_stage", "fusion", "rerank", "total", "ann_search")
LOAD = "load"  # `harness load`: one mode per level, `clients=N`
STAGES = (INDEX, FIRST_STAGE, FUSION, RERANK, TOTAL, ANN_SEARCH, LOAD)
# Modes: one-off set-up, all queries in one call, one query per call.
BUILD, BATCH, SINGLE = "build", "batch", "single"
MODES = (BUILD, BATCH, SINGLE)
# Stats carry their unit. Stages may add their own (e.g. `embedding_cache_hit`).
WALL_S, QPS, N_QUERIES, THREADS = "wall_s", "qps", "n_queries", "threads"
P50_MS, P95_MS, P99_MS, MEAN_MS = "p50_ms", "p95_ms", "p99_ms", "mean_ms"
SIZE_BYTES, PEAK_RSS_DELTA_BYTES = "size_bytes", "peak_rss_delta_bytes"
LATENCY_STATS = (P50_MS, P95_MS, P99_MS, MEAN_MS)  # all lower-is-better
STATS = (P50_MS, P95_MS, P99_MS, MEAN_MS, QPS, WALL_S, N_QUERIES, THREADS, SIZE_BYTES,
         PEAK_RSS_DELTA_BYTES)

# -- metadata.json ----------------------------------------------------------------------------
PIPELINES = "pipelines"      # pipeline name -> its entry (fields: reader.PipelineInfo)
OK, FAILED = "ok", "failed"  # an entry's `status`

# -- runs/ ------------------------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def run_tag(pipeline: str) -> str:
    """The run's TREC tag (the last column): the name with runs of unsafe characters as `_`."""
    return _UNSAFE.sub("_", pipeline)


def run_file_name(pipeline: str) -> str:
    """A file name for a pipeline's run: readable, and unique for distinct pipeline names.

    Readers never derive it from the name: the writer records it as `pipelines.<name>.run_file`.
    """
    safe = run_tag(pipeline).strip("_")
    return f"{safe}.trec" if safe == pipeline else f"{safe}-{stable_hash(pipeline)[:8]}.trec"
