"""`colbert`: ColBERT late interaction with the PLAID engine of colbert-ai (Indexer / Searcher).

Processes: colbert-ai indexes with one rank and `avoid_fork_if_possible`, so `Indexer.index` runs in
this process and starts none (its multi-rank path starts a multiprocessing Manager and spawned
workers, which re-import the main module). colbert-ai also changes process-wide state: importing it
forces the multiprocessing start method to "spawn", and indexing rewrites CUDA_VISIBLE_DEVICES.
Both are restored here, so later stages in the same process are unaffected.

Cache: the index lives under `<cache_dir>/colbert/<key>`, key = hash of the corpus (ids and texts),
the checkpoint's file fingerprint and the index-time parameters. It is built under a temporary
name and renamed when complete, with the pid -> doc id map written last, so an interrupted build
is never reused. Search-time parameters (ncells, centroid_score_threshold, ndocs, query_maxlen)
are not part of the key: a sweep over them reuses one index.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
from pathlib import Path
from typing import Iterator, Literal, Mapping, Optional

from pydantic import Field

from harness.storage.atomic import write_json
from harness.core.context import RunContext
from harness.core.hashing import stable_hash, texts_hash
from harness.core.registry import Params, register
from harness.core.types import Document, Run

COLBERT_V2 = "colbert-ir/colbertv2.0"
DOC_IDS_FILE = "harness_doc_ids.json"  # written last: its presence marks a complete index


class ColBERTParams(Params):
    MODEL_FIELDS = ("checkpoint",)
    checkpoint: str = Field(COLBERT_V2, description="hub id or local folder")
    # Index-time (part of the index key).
    nbits: Literal[1, 2, 4, 8] = Field(2, description="bits per residual dimension")
    doc_maxlen: int = Field(180, ge=1, description="document tokens kept")
    dim: Optional[int] = Field(None, ge=1, description="None = the checkpoint's (128 if unset)")
    kmeans_niters: int = Field(4, ge=1)
    index_bsize: int = Field(64, ge=1, description="documents encoded per batch")
    # Search-time. None = colbert-ai's choice for the requested k (see `search_settings`).
    query_maxlen: int = Field(32, ge=1)
    ncells: Optional[int] = Field(None, ge=1, description="centroids probed per query token")
    centroid_score_threshold: Optional[float] = Field(None, description="centroid pruning")
    ndocs: Optional[int] = Field(None, ge=1, description="candidates scored exactly")


def search_settings(params: ColBERTParams, k: int) -> dict:
    """(ncells, centroid_score_threshold, ndocs) for k: the given ones, else colbert-ai's defaults.

    Resolved on every call because colbert-ai's Searcher stores the defaults of its first search
    and keeps them for later, different k.
    """
    if k <= 10:
        defaults = (1, 0.5, 256)
    elif k <= 100:
        defaults = (2, 0.45, 1024)
    else:
        defaults = (4, 0.4, max(k * 4, 4096))
    given = (params.ncells, params.centroid_score_threshold, params.ndocs)
    names = ("ncells", "centroid_score_threshold", "ndocs")
    return {n: d if g is None else g for n, g, d in zip(names, given, defaults)}


def import_colbert():
    """colbert-ai's modules, imported with the multiprocessing start method restored."""
    method = multiprocessing.get_start_method(allow_none=True)
    import colbert
    import colbert.infra
    multiprocessing.set_start_method(method, force=True)
    return colbert, colbert.infra


@contextlib.contextmanager
def _preserve_cuda_visible_devices() -> Iterator[None]:
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


@register("retriever", "colbert", params=ColBERTParams, requires=("colbert",),
          install_hint="pip install 'retrieval-harness[colbert]' (colbert-ai, transformers<5)")
class ColBERTRetriever:
    """ColBERT PLAID (colbert-ai): compressed late-interaction index, e.g. colbert-ir/colbertv2.0."""

    def __init__(self, params: ColBERTParams, ctx: RunContext):
        import torch

        from harness.core.models import model_fingerprint, resolve_model
        torch.set_num_threads(ctx.threads)
        self.params = params
        self.ctx = ctx
        self.checkpoint = resolve_model(params.checkpoint)  # fails fast offline, before any work
        self.fingerprint = model_fingerprint(self.checkpoint)
        self.root = Path(ctx.cache_dir) / "colbert"
        self.stats: dict = {}
        self.index_builds = 0  # indexes built by this instance; tests count them
        self._searcher = None
        self._doc_ids: list[str] = []

    def _config(self, **extra):
        _, infra = import_colbert()
        given = {"nbits": self.params.nbits, "doc_maxlen": self.params.doc_maxlen,
                 "query_maxlen": self.params.query_maxlen,
                 "kmeans_niters": self.params.kmeans_niters,
                 "index_bsize": self.params.index_bsize, **extra}
        if self.params.dim is not None:
            given["dim"] = self.params.dim
        if self.ctx.device == "cpu":
            given["gpus"] = 0
        return infra.ColBERTConfig(**given)

    def _run_config(self, **extra):
        _, infra = import_colbert()
        # One rank, no fork: Indexer.index runs in this process (see the module docstring).
        given = {"nranks": 1, "avoid_fork_if_possible": True, "root": str(self.root),
                 "experiment": "harness", **extra}
        if self.ctx.device == "cpu":
            given["gpus"] = 0
        return infra.RunConfig(**given)

    def index_key(self, ids: list[str], texts: list[str]) -> str:
        return stable_hash({"corpus": texts_hash(ids, texts), "checkpoint": self.fingerprint,
                            "nbits": self.params.nbits, "doc_maxlen": self.params.doc_maxlen,
                            "dim": self.params.dim, "kmeans_niters": self.params.kmeans_niters})

    def index(self, corpus: Mapping[str, Document]) -> None:
        ids = list(corpus)
        texts = [corpus[d].full_text for d in ids]
        name = self.index_key(ids, texts)
        folder = self.root / name
        if not (folder / DOC_IDS_FILE).exists():
            self._build(name, texts, ids)
        self.stats["index_cache_hit"] = float(self.index_builds == 0)
        self.stats["size_bytes"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        self._doc_ids = json.loads((folder / DOC_IDS_FILE).read_text())
        colbert, infra = import_colbert()
        with infra.Run().context(self._run_config()):
            self._searcher = colbert.Searcher(index=name, checkpoint=self.checkpoint,
                                              collection=texts, config=self._config(),
                                              index_root=str(self.root), verbose=0)

    def _build(self, name: str, texts: list[str], ids: list[str]) -> None:
        colbert, infra = import_colbert()
        # Built under its final name inside a private folder, then moved: colbert-ai records the
        # index name (not its path) in the index metadata.
        staging = self.root / f".staging-{name[:16]}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        with _preserve_cuda_visible_devices(), \
                infra.Run().context(self._run_config(index_root=str(staging))):
            indexer = colbert.Indexer(checkpoint=self.checkpoint, config=self._config(), verbose=0)
            indexer.index(name=name, collection=texts, overwrite=True)
        write_json(staging / name / DOC_IDS_FILE, ids)  # pid i is ids[i]
        target = self.root / name
        if target.exists() and not (target / DOC_IDS_FILE).exists():
            shutil.rmtree(target)  # left by an interrupted build of an older version
        try:
            os.replace(staging / name, target)
        except OSError:  # another process finished the same index first: keep theirs
            pass
        shutil.rmtree(staging, ignore_errors=True)
        self.index_builds += 1

    def stage_stats(self) -> dict:
        return dict(self.stats)

    def models(self) -> dict[str, dict[str, str]]:
        return {"checkpoint": {"name": self.params.checkpoint, "fingerprint": self.fingerprint}}

    def search(self, queries: Mapping[str, str], k: int) -> Run:
        qids = list(queries)
        k = min(k, len(self._doc_ids))
        self._searcher.configure(**search_settings(self.params, k))
        encoded = self._searcher.encode([queries[q] for q in qids])
        run: Run = {}
        for row, qid in enumerate(qids):
            pids, _, scores = self._searcher.dense_search(encoded[row:row + 1], k)
            run[qid] = {self._doc_ids[pid]: float(score) for pid, score in zip(pids, scores)}
        return run
