"""One small, batch-first protocol per stage. Plugins implement these; the runner only calls these."""
from __future__ import annotations

from typing import Mapping, Protocol, Tuple, runtime_checkable

import numpy as np

from harness.core.types import Document, Qrels, Run


@runtime_checkable
class Retriever(Protocol):
    """First stage: index a corpus once, then answer batches of queries."""

    def index(self, corpus: Mapping[str, Document]) -> None: ...

    def search(self, queries: Mapping[str, str], k: int) -> Run: ...


@runtime_checkable
class Reranker(Protocol):
    """Second stage: re-score the top `depth` of each query's ranking in `run`.

    Documents below `depth` keep their relative order, placed below the reranked ones.
    """

    def rerank(self, queries: Mapping[str, str], corpus: Mapping[str, Document], run: Run,
               depth: int) -> Run: ...


@runtime_checkable
class Fuser(Protocol):
    """Combines two or more runs of the same queries into one."""

    def fuse(self, runs: list[Run], k: int) -> Run: ...


@runtime_checkable
class ANNIndex(Protocol):
    """A vector index: build once per build point, then sweep search parameters on it.

    `search` returns (ids, scores), both shaped (n_queries, k); ids are row numbers of X,
    -1 where the index returned fewer than k neighbours.
    """

    def build(self, X: np.ndarray) -> None: ...

    def set_search_params(self, **params) -> None: ...

    def search(self, Q: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class Serializable(Protocol):
    """Optional capability of an ANN index: its serialised size in bytes."""

    def nbytes(self) -> int: ...


@runtime_checkable
class ExtraMeasures(Protocol):
    """Optional capability of a retriever: per-query measures of its own beside the qrels ones
    (e.g. an ANN index's recall against exact search), `{measure: {qid: value}}`."""

    def extra_measures(self, run: Run) -> dict[str, dict[str, float]]: ...


@runtime_checkable
class HasSubstages(Protocol):
    """Optional capability of a stage whose parts are worth timing apart (a dense retriever:
    query encoding vs the index search alone, the ann-benchmarks view). Returns timings.csv rows
    `(stage, mode, stat, value)`, measured with the same rules as the runner's own."""

    def substage_timings(self, queries: Mapping[str, str], k: int, latency_qids: list[str],
                         warmup: int) -> list[tuple[str, str, str, float]]: ...


@runtime_checkable
class FlagsResults(Protocol):
    """Optional capability of a retriever: counts of malformed results in its last batch (ANN
    backends returning fewer than k, more than k, or repeated ids), recorded in metadata.json."""

    def result_flags(self) -> dict[str, int]: ...


@runtime_checkable
class NeedsQrels(Protocol):
    """Optional capability of a reranker that must see the judgments (the oracle)."""

    def set_qrels(self, qrels: Qrels) -> None: ...


@runtime_checkable
class NeedsCorpus(Protocol):
    """Optional capability of a reranker with per-corpus set-up (loading cached document token
    embeddings, say): the runner calls it once, timed as the stage's build, not as its search."""

    def prepare(self, corpus: Mapping[str, Document]) -> None: ...


@runtime_checkable
class Reports(Protocol):
    """Optional capability of any stage: what it did, for the record (metadata.json
    `pipelines.<name>.stage_stats`), e.g. cache hits, documents or pairs a model truncated,
    the precision actually used. JSON values. The runner asks once after set-up (its numbers
    join the `build` timings) and once after the timed batch call, untimed both times: a stage
    does work that only serves the record (tokenising to count truncation) here, not in its
    search."""

    def stage_stats(self) -> dict: ...


@runtime_checkable
class LoadsModels(Protocol):
    """Optional capability of a stage that loads models: each one by the config field naming it,
    `{field: {"name": as configured, "fingerprint": harness.core.models.model_fingerprint}}`
    (metadata.json `pipelines.<name>.models`)."""

    def models(self) -> dict[str, dict[str, str]]: ...


@runtime_checkable
class BatchThreads(Protocol):
    """Optional capability: the threads the stage's batch call runs on at once, recorded as its
    batch `threads`. Without it the run's `threads` is recorded, so a stage that runs a batch in
    fewer threads than the run's (pure Python, or one query at a time in one thread) says so."""

    def batch_threads(self) -> int: ...


@runtime_checkable
class NeedsTokenEmbeddings(Protocol):
    """Optional capability of a plugin's *parameters*: the plugin reads per-token document
    embeddings of this encoder (MaxSim). The runner tells every stage with the same encoder to
    keep them from its one document pass (RunContext.token_encoders)."""

    def token_encoder(self) -> tuple: ...
