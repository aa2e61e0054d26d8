"""Inference-backend speed on SciFact text, in one process: torch vs onnx vs onnx-int8.

    .venv/bin/python benchmarks/backends.py [--docs 150] [--queries 30] [--pairs 200]
                                            [--rounds 3] [--threads 1] [--cross-encoder DIR]

Per backend: MiniLM document encoding (docs/s, pooled + token embeddings, as the dense stage
with a MaxSim rerank computes them), single-query encoding latency (p50/p95, the live part of a
dense query), and cross-encoder scoring (pairs/s). The cross-encoder is --cross-encoder (e.g. one
trained by a `train:` section, taken out with `harness models export`), else all-MiniLM-L6-v2's
backbone with a randomly initialised (seeded) classification head: its scores mean nothing, its
speed is a MiniLM cross-encoder's (speed only, no quality). Rounds alternate the backends so load
drift hits each alike; medians are printed with the ratios to torch. ONNX exports are cached
(HARNESS_CACHE_DIR) and happen before any timing; models load outside the timed sections.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from harness.core.context import RunContext, default_cache_dir
from harness.datasets import load_dataset
from harness.evaluation.timing import single_query_latency, time_call

BACKENDS = ("torch", "onnx", "onnx-int8")
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def random_head_cross_encoder(cache_dir: Path) -> str:
    """MiniLM's encoder weights + a seeded random 1-logit head, saved once as a checkpoint."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from harness.core.models import resolve_model
    folder = cache_dir / "benchmarks" / "minilm-random-head-ce"
    if not (folder / "config.json").exists():
        source = resolve_model(MINILM)
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return str(folder)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=150)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cross-encoder", default=None, metavar="DIR",
                    help="a cross-encoder folder (default: MiniLM with a random head, speed only)")
    args = ap.parse_args(argv)

    import torch

    from harness.core import registry
    from harness.retrievers.dense import BiEncoderRetriever, DenseParams
    torch.set_num_threads(args.threads)
    data = load_dataset("scifact", "test")
    doc_ids = list(data.corpus)[:args.docs]
    texts = [data.corpus[d].full_text for d in doc_ids]
    queries = list(data.queries.values())[:args.queries]
    corpus = {d: data.corpus[d] for d in doc_ids}
    query_map = {f"q{i}": q for i, q in enumerate(queries)}
    pairs = [(f"q{i % len(queries)}", doc_ids[i % len(doc_ids)]) for i in range(args.pairs)]
    cache_dir = default_cache_dir()
    ctx = RunContext(cache_dir=cache_dir, threads=args.threads, progress=False)
    ce_path = args.cross_encoder or random_head_cross_encoder(cache_dir)
    ce_plugin = registry.get("reranker", "cross-encoder")

    encoders, rerankers = {}, {}
    for backend in BACKENDS:  # exports (cached) and model loads: outside every timing
        encoders[backend] = BiEncoderRetriever(DenseParams(backend=backend), ctx, need_tokens=True)
        rerankers[backend] = ce_plugin.factory(ce_plugin.params(model=ce_path, backend=backend),
                                               ctx)
    print(f"date={time.strftime('%Y-%m-%d %H:%M:%S %Z')} docs={len(texts)} "
          f"queries={len(queries)} pairs={len(pairs)} rounds={args.rounds} "
          f"threads={args.threads} cross_encoder={args.cross_encoder or 'random head'}")

    samples = {b: {"docs/s": [], "p50 ms": [], "p95 ms": [], "CE pairs/s": []} for b in BACKENDS}
    vectors = {}
    for _ in range(args.rounds):
        for backend in BACKENDS:
            encoder, ce = encoders[backend], rerankers[backend]
            arrays, seconds = time_call(lambda: encoder.encode_documents(texts))
            vectors[backend] = arrays["vectors"]
            samples[backend]["docs/s"].append(len(texts) / seconds)
            lat = single_query_latency(lambda q: encoder.encode_queries([q]), queries, warmup=3)
            samples[backend]["p50 ms"].append(lat.p50_ms)
            samples[backend]["p95 ms"].append(lat.p95_ms)
            _, seconds = time_call(lambda: ce.score_pairs(pairs, query_map, corpus))
            samples[backend]["CE pairs/s"].append(len(pairs) / seconds)
            print(f"  round sample {backend}: " + ", ".join(
                f"{k}={v[-1]:.2f}" for k, v in samples[backend].items()), flush=True)

    medians = {b: {k: statistics.median(v) for k, v in s.items()} for b, s in samples.items()}
    print(f"{'backend':<10} {'docs/s':>8} {'x torch':>8} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'x p95':>6} {'CE pairs/s':>11} {'x torch':>8} {'min doc cos':>12}")
    base = medians["torch"]
    for backend in BACKENDS:
        m = medians[backend]
        cosine = float(np.min((vectors[backend] * vectors["torch"]).sum(axis=1)))
        print(f"{backend:<10} {m['docs/s']:8.1f} {m['docs/s'] / base['docs/s']:7.2f}x "
              f"{m['p50 ms']:8.2f} {m['p95 ms']:8.2f} {base['p95 ms'] / m['p95 ms']:5.2f}x "
              f"{m['CE pairs/s']:11.1f} {m['CE pairs/s'] / base['CE pairs/s']:7.2f}x "
              f"{cosine:12.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
