"""A reduced run of configs/cloud-faq-finetune.yaml: fewer training queries, fewer evaluated
queries, chosen pipelines and rerank depths; prints each pipeline's metrics, its Δ against base
MiniLM (or --baseline) with the randomisation-test p-value (Holm-corrected over the pipelines compared), and each
trained model's training time and samples/s, all measured in this one run.

    .venv/bin/python benchmarks/finetune_subset.py                         # MNRL bi-encoder only
    .venv/bin/python benchmarks/finetune_subset.py --pipelines dense-minilm,dense-ft \
        --depths 20 --train-queries 1280 --eval-queries 500 --out results/ft-subset
    .venv/bin/python benchmarks/finetune_subset.py --pipelines bm25,dense-minilm --depths 10,20 \
        --baseline bm25                                                # the cross-encoder

The whole config (every model, all 6,321 training and 2,177 test questions) is
`harness run configs/cloud-faq-finetune.yaml`. Trained models are cached
($HARNESS_CACHE_DIR/trained/): a rerun with the same settings retrains nothing.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

import harness
from harness.config import read

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "cloud-faq-finetune.yaml"
BASELINE = "dense-minilm"


def reduced(train_queries: int, pipelines: list[str], depths: list[int], eval_queries: int,
            extra_docs: int | None, settings: list[str]) -> dict:
    data = read(CONFIG)
    data["name"] = "cloud-faq-finetune-subset"
    if extra_docs is not None:  # a seeded slice: the evaluated questions' answers + others
        data["dataset"]["slice"] = {"queries": eval_queries, "extra_docs": extra_docs, "seed": 0}
    data["pipelines"] = [p for p in data["pipelines"] if p["name"] in pipelines]
    for p in data["pipelines"]:
        if "rerank" in p:
            if depths:
                p["rerank"]["depth"] = depths
            else:
                del p["rerank"]
    for spec in data["train"].values():
        spec["max_queries"] = train_queries
    for setting in settings:
        target, _, value = setting.partition("=")
        name, _, field = target.partition(".")
        data["train"][name][field] = yaml.safe_load(value)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-queries", type=int, default=1280)
    parser.add_argument("--eval-queries", type=int, default=500)
    parser.add_argument("--pipelines", default="dense-minilm,dense-ft")
    parser.add_argument("--depths", default="", help="rerank depths, e.g. 10,20 (default: none)")
    parser.add_argument("--extra-docs", type=int, default=None,
                        help="evaluate over a slice: the evaluated questions' answers plus this "
                             "many other answers (default: all 8,489 answers)")
    parser.add_argument("--baseline", default=BASELINE, help="the pipeline every Δ is against")
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        metavar="MODEL.FIELD=VALUE", help="change a train: field, e.g. "
                        "minilm-ce.negatives=bm25 (repeatable)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    names = args.pipelines.split(",")
    if args.baseline not in names:
        parser.error(f"--pipelines must include the baseline {args.baseline}")
    depths = [int(d) for d in args.depths.split(",") if d]
    started = time.perf_counter()
    results = harness.run(reduced(args.train_queries, names, depths, args.eval_queries,
                                  args.extra_docs, args.settings), args.out, max_queries=args.eval_queries)
    wall = time.perf_counter() - started
    docs = results.metadata["dataset"]["n_docs"]
    print(f"\n{args.eval_queries} test queries over {docs} answers, {args.train_queries} training "
          f"queries per model; "
          f"whole run {wall:.0f} s -> {results.path}")
    for name, t in results.metadata.get("trained_models", {}).items():
        print(f"  trained {name}: {t['data']['n_examples']} examples, {t['wall_s']:.0f} s, "
              f"{t['samples_per_s']:.1f} samples/s, loss {t['loss_curve'][0][1]:.3f} -> "
              f"{t['loss_curve'][-1][1]:.3f}{' (reused from cache)' if t['reused'] else ''}")
    table = results.compare(baseline=args.baseline, measures=["nDCG@10", "RR@10"])
    print(table[["pipeline", "measure", "mean", "delta", "p_randomisation_holm", "wins",
                 "losses"]].to_string(index=False))


if __name__ == "__main__":
    main()
