"""Cross-encoder rerank throughput (pairs/s) and the per-stage latency split: BM25 vs rerank.

    .venv/bin/python benchmarks/rerank_throughput.py                      # CPU, tiny model
    .venv/bin/python benchmarks/rerank_throughput.py --size minilm-l6     # ms-marco-MiniLM-L-6 shape
    .venv/bin/python benchmarks/rerank_throughput.py --device cuda        # BERT-base shape, fp32 + fp16

No cross-encoder checkpoint is downloadable offline, so the model is built on the fly: a BERT
sequence-classification config of the chosen size with random weights, saved to a temp folder and
loaded through the `cross-encoder` plugin like a real checkpoint. Speed depends on shape and token
counts, not on the weights; the tokenizer is the real BERT WordPiece one shipped with MiniLM, so
token counts are realistic. `--model` benchmarks an existing checkpoint instead. Model building
and loading, indexing and warm-up are outside every timed section. On a machine without CUDA,
`--device cuda` prints why it skips and exits 0.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import harness.rerankers  # noqa: F401 - registers the rerankers
from harness.core import registry
from harness.storage.atomic import write_json
from harness.core.context import RunContext
from harness.datasets import load_dataset, slice_dataset
from harness.evaluation.timing import batch_throughput, single_query_latency, time_call

# (hidden size, layers, attention heads, intermediate size)
SIZES = {
    "tiny": (32, 2, 2, 37),
    "minilm-l6": (384, 6, 12, 1536),  # cross-encoder/ms-marco-MiniLM-L-6-v2
    "base": (768, 12, 12, 3072),      # BERT-base, e.g. monoBERT-style rerankers
}


def build_random_cross_encoder(size: str, folder: Path) -> str:
    """A BertForSequenceClassification (1 label) of the given shape, random weights, seeded."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from harness.core.models import resolve_model
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("sentence-transformers/all-MiniLM-L6-v2"))
    hidden, layers, heads, intermediate = SIZES[size]
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate,
                        max_position_embeddings=512, num_labels=1)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.model_max_length = 512
    tokenizer.save_pretrained(folder)
    return str(folder)


def bench(args, model: str, fp16: bool, ds, run, retriever) -> dict:
    plugin = registry.get("reranker", "cross-encoder")
    ctx = RunContext(device=args.device, threads=args.threads, progress=False)
    reranker = plugin.factory(plugin.params(model=model, batch_size=args.batch_size,
                                            max_length=args.max_length, fp16=fp16), ctx)
    queries, corpus, qids = ds.queries, ds.corpus, list(ds.queries)
    one = lambda q: {q: queries[q]}  # noqa: E731
    reranker.rerank(one(qids[0]), corpus, {qids[0]: run[qids[0]]}, args.depth)  # warm-up

    _, rerank_s = time_call(lambda: reranker.rerank(queries, corpus, run, args.depth))
    stats = reranker.stage_stats()  # untimed: the batch's counts, truncation included
    pairs = stats["pairs"]
    lat_qids = qids[:args.latency_queries]
    first = single_query_latency(lambda q: retriever.search(one(q), args.k), lat_qids, warmup=3)
    rerank = single_query_latency(
        lambda q: reranker.rerank(one(q), corpus, {q: run[q]}, args.depth), lat_qids, warmup=2)
    total = single_query_latency(
        lambda q: reranker.rerank(one(q), corpus, retriever.search(one(q), args.k), args.depth),
        lat_qids, warmup=2)
    return {"device": reranker.device, "fp16": reranker.fp16, "batch_pairs": pairs,
            "batch_rerank_s": rerank_s, "pairs_per_s": pairs / rerank_s,
            "truncated_pairs": stats["truncated_pairs"], "max_length": stats["max_length"],
            "single": {"first_stage": first.as_stats(), "rerank": rerank.as_stats(),
                       "total": total.as_stats()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--size", choices=sorted(SIZES), help="default: tiny on cpu, base on cuda")
    ap.add_argument("--model", help="an existing cross-encoder (folder or hub id) instead")
    ap.add_argument("--precision", nargs="+", choices=["fp32", "fp16"],
                    help="default: fp32 on cpu, fp32 and fp16 on cuda")
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--k", type=int, default=100, help="first-stage results per query")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--queries", type=int, default=30, help="SciFact test queries in the slice")
    ap.add_argument("--extra-docs", type=int, default=470, help="distractor documents")
    ap.add_argument("--latency-queries", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 = steady numbers on a shared machine)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()

    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            print("CUDA is not available on this machine: skipping the GPU rerank benchmark.")
            return 0
    size = args.size or ("base" if args.device == "cuda" else "tiny")
    precisions = args.precision or (["fp32", "fp16"] if args.device == "cuda" else ["fp32"])

    ds = load_dataset("scifact", "test")
    ds = slice_dataset(ds, args.queries, args.extra_docs, seed=0)
    ctx = RunContext(threads=args.threads, progress=False)
    plugin = registry.get("retriever", "bm25s")
    retriever = plugin.factory(plugin.params(), ctx)
    retriever.index(ds.corpus)
    run, first_s, first_qps = batch_throughput(lambda ids: retriever.search(
        {q: ds.queries[q] for q in ids}, args.k), list(ds.queries))

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_random_cross_encoder(size, Path(tmp) / f"ce-{size}")
        label = args.model or f"random BERT {size} {SIZES[size]}"
        print(f"{ds.name}: {len(ds.corpus)} docs, {len(ds.queries)} queries; first stage bm25s "
              f"k={args.k}; rerank depth {args.depth}, batch {args.batch_size}, max_length "
              f"{args.max_length}; model {label}; threads {args.threads}")
        print(f"first stage (batch): {first_qps:,.0f} q/s ({first_s * 1000:.1f} ms for all)")
        results = {"dataset": ds.name, "model": label, "depth": args.depth, "k": args.k,
                   "batch_size": args.batch_size, "threads": args.threads,
                   "first_stage_batch_qps": first_qps, "runs": []}
        for precision in precisions:
            r = bench(args, model, precision == "fp16", ds, run, retriever)
            results["runs"].append(r)
            s = r["single"]
            first_ms, rerank_ms = s["first_stage"]["mean_ms"], s["rerank"]["mean_ms"]
            share = 100 * rerank_ms / (first_ms + rerank_ms)
            print(f"[{r['device']} fp16={r['fp16']}] rerank batch: {r['pairs_per_s']:,.1f} pairs/s "
                  f"({r['batch_pairs']} pairs in {r['batch_rerank_s']:.2f} s; "
                  f"{r['truncated_pairs']} truncated at {r['max_length']} tokens)")
            print(f"  single query, mean (p50/p95) ms over {s['total']['n_queries']} queries: "
                  f"first stage {s['first_stage']['mean_ms']:.2f} "
                  f"({s['first_stage']['p50_ms']:.2f}/{s['first_stage']['p95_ms']:.2f}), "
                  f"rerank {s['rerank']['mean_ms']:.1f} "
                  f"({s['rerank']['p50_ms']:.1f}/{s['rerank']['p95_ms']:.1f}), "
                  f"total (one call) {s['total']['mean_ms']:.1f}; rerank share {share:.1f}%")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
