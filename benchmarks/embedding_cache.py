"""Cold vs warm `harness run` of the dense MiniLM pipeline on SciFact (issue 2, acceptance 5).

    .venv/bin/python benchmarks/embedding_cache.py

Runs the CLI twice with one fresh cache folder: the first run encodes the corpus, the second
must find every embedding in the cache (its log says "cache hit") and take <= 1/10 of the time.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """name: cache-bench
dataset: {name: scifact, split: test}
measures: [nDCG@10]
timing: {latency_queries: 100, warmup: 5}
pipelines:
  - name: dense-minilm
    retriever: {type: dense, model: sentence-transformers/all-MiniLM-L6-v2}
"""


def timed_run(harness: str, config: Path, out: Path, cache: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([harness, "run", str(config), "--out", str(out), "--cache-dir", str(cache),
                           "--no-report"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"harness run failed:\n{proc.stderr[-3000:]}")
    return seconds, proc.stderr + proc.stdout


def main() -> None:
    harness = str(Path(sys.executable).with_name("harness"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = tmp / "cache-bench.yaml"
        config.write_text(CONFIG)
        cold, cold_log = timed_run(harness, config, tmp / "cold", tmp / "cache")
        warm, warm_log = timed_run(harness, config, tmp / "warm", tmp / "cache")
    print(f"cold run (encodes the corpus): {cold:.1f} s; log says cache miss: {'cache miss' in cold_log}")
    print(f"warm run (cached embeddings):  {warm:.1f} s; log says cache hit: {'cache hit' in warm_log}; "
          f"re-encoded: {'cache miss' in warm_log}")
    print(f"warm / cold = {warm / cold:.3f} (target <= 0.100)")


if __name__ == "__main__":
    main()
