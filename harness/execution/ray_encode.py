"""Corpus encoding sharded over a Ray Data actor pool, into the shared embedding cache.

For every (bi-encoder, corpus) pair the config needs (a `dense` first stage, a `maxsim`
reranker's token embeddings) whose cache entry is missing, the driver forms the very batches a
local encode forms (`BiEncoderRetriever.batches`: padding depends on a batch's members), and a
pool of actors, each loading the model once, encodes one batch per call (`map_batches` with a
callable class; one actor per free CPU/GPU slot). The driver puts the batches back in place,
normalises as a local encode does, and saves the entry under the same content key: the vectors
are the local encoder's bit for bit (tests/test_ray.py), and every task, or a later local run,
hits the cache. The entry's recorded cost is the pool's wall time and the largest memory rise
of one actor.
"""
from __future__ import annotations

import logging
import time
from typing import Optional

import numpy as np
import psutil

from harness.config import Config
from harness.core import registry
from harness.core.context import RunContext
from harness.core.hashing import stable_hash, texts_hash
from harness.core.types import Dataset
from harness.execution.plan import Pipeline

log = logging.getLogger(__name__)


def bi_encoder_params(node) -> Optional[object]:
    """The DenseParams whose document cache entry this node reads, if any."""
    from harness.rerankers.maxsim import MaxSimParams, shared_dense_params
    from harness.retrievers.dense import DenseParams
    params = registry.get(node.kind, node.spec.type).params(**node.spec.plugin_params())
    if isinstance(params, DenseParams):
        return params
    if isinstance(params, MaxSimParams):
        return shared_dense_params(params)
    return None


class EncoderActor:
    """One Ray Data actor: the bi-encoder loaded once, one batch (one row) per call."""

    def __init__(self, params, ctx: RunContext, tokens: bool):
        from harness.api import offline_defaults
        from harness.retrievers.dense import BiEncoderRetriever
        offline_defaults()
        self.encoder = BiEncoderRetriever(params, ctx, need_tokens=tokens)
        self.tokens = tokens
        self.baseline = psutil.Process().memory_info().rss  # the model loaded, nothing encoded

    def __call__(self, batch: dict) -> dict:
        from harness.evaluation.timing import PeakRSSDelta
        (texts,) = batch["texts"]
        texts = [str(t) for t in texts]
        start = psutil.Process().memory_info().rss
        with PeakRSSDelta() as rss:
            pooled, tokens = self.encoder.forward_batch(texts, self.tokens)
            lengths = self.encoder.token_lengths(texts)
        out = {"batch": batch["batch"], "pooled": [pooled.tobytes()],
               "token_lengths": [lengths.tobytes()],
               # this call's peak, as a rise above the actor's memory once its model was loaded
               "peak_rss_delta_bytes": [start - self.baseline + rss.delta_bytes]}
        if tokens is not None:
            out["token_rows"] = [np.array([len(t) for t in tokens], np.int64).tobytes()]
            out["token_data"] = [np.concatenate(tokens).astype(np.float32).tobytes()]
        return out


def encode_with_ray(encoder, texts: list[str], ctx: RunContext,
                    cluster: dict) -> tuple[dict, dict]:
    """(arrays, cost) of `encoder`'s documents, encoded by an actor pool."""
    import ray.data
    from harness.execution.ray_executor import task_resources
    from harness.retrievers.dense import document_arrays, normalize_rows
    texts = encoder.document_texts(texts)
    batches = encoder.batches(texts)
    resources = task_resources(ctx, cluster, f"encoding {encoder.params.model}")
    slots = int(cluster["GPU"] if "num_gpus" in resources else
                cluster["CPU"] // resources["num_cpus"])
    actors = max(1, min(slots, len(batches)))
    data_ctx = ray.data.DataContext.get_current()  # the harness logs the encode itself
    data_ctx.enable_progress_bars = data_ctx.print_on_execution_start = False
    started = time.perf_counter()
    items = [{"batch": b, "texts": [texts[i] for i in rows]} for b, rows in enumerate(batches)]
    replies = ray.data.from_items(items).map_batches(
        EncoderActor, fn_constructor_args=(encoder.params, ctx, encoder.need_tokens),
        batch_size=1, concurrency=actors, **resources).take_all()
    dim = encoder.model.get_embedding_dimension()
    pooled = np.empty((len(texts), dim), np.float32)
    lengths = np.empty(len(texts), np.int32)
    tokens: Optional[list] = [None] * len(texts) if encoder.need_tokens else None
    for reply in replies:
        rows = batches[int(reply["batch"])]
        pooled[rows] = np.frombuffer(reply["pooled"], np.float32).reshape(len(rows), dim)
        lengths[rows] = np.frombuffer(reply["token_lengths"], np.int32)
        if tokens is not None:
            counts = np.frombuffer(reply["token_rows"], np.int64)
            data = np.frombuffer(reply["token_data"], np.float32).reshape(-1, dim)
            for i, part in zip(rows, np.split(data, np.cumsum(counts)[:-1])):
                tokens[i] = part
    if encoder.params.normalize:
        normalize_rows(pooled)
    cost = {"wall_s": time.perf_counter() - started,
            "peak_rss_delta_bytes": int(max(r["peak_rss_delta_bytes"] for r in replies))}
    log.info("ray: encoded %d documents with %s in %.1f s on %d actor(s)", len(texts),
             encoder.params.model, cost["wall_s"], actors)
    return document_arrays(pooled, lengths, tokens), {**cost, "actors": actors}


def encode_corpora(config: Config, dataset: Dataset, ctx: RunContext,
                   groups: list[list[Pipeline]], cluster: dict) -> int:
    """Encode, through Ray, every corpus encoding these groups need that the cache lacks; returns
    how many were encoded."""
    from harness.retrievers.dense import BiEncoderRetriever, token_encoder_key
    wanted = {}
    for group in groups:
        for pipeline in group:
            for node in pipeline.leaf.chain():
                params = bi_encoder_params(node)
                if params is not None:  # one entry per document encoder (the cache key's parts)
                    wanted.setdefault(token_encoder_key(params), params)
    ids = list(dataset.corpus)
    texts = [dataset.corpus[d].full_text for d in ids]
    corpus_hash = texts_hash(ids, texts)
    encoded = 0
    for params in wanted.values():
        try:
            encoder = BiEncoderRetriever(params, ctx)  # the driver's copy: keys and batches only
            key = stable_hash({"encoder": encoder.encoder_key(), "corpus": corpus_hash})
            entry = encoder.cache.load(key)
            if entry is not None and entry.cost and all(a in entry.arrays
                                                        for a in encoder.required_arrays()):
                continue
            arrays, cost = encode_with_ray(encoder, texts, ctx, cluster)
        except Exception as exc:  # as locally, only the entries that need this encoder fail
            log.error("ray: encoding the corpus with %s failed (%s: %s); the entries that need "
                      "it encode it themselves", params.model, type(exc).__name__, exc)
            continue
        encoder.cache.save(key, arrays, {"what": "documents", "n": len(ids),
                                         "encoder": encoder.encoder_key(), "executor": "ray"},
                           cost)
        encoded += 1
    return encoded
