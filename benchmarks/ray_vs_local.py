"""Wall time of one config run by the local executor and by `--executor ray` (docs/distributed.md).

    .venv/bin/python benchmarks/ray_vs_local.py configs/ci-smoke.yaml [--max-queries N]
        [--cache cold|warm | --cache-dir DIR] [--ray-address ADDR]

Runs `harness run` twice as subprocesses (so Ray's start-up is counted), local first, each into
a fresh results folder. `--cache cold` (default) gives each run its own empty embedding cache, so
both encode the corpus (locally in one process, through the Ray Data actor pool); `--cache warm`
fills one cache with a first, untimed local run and times both against it; `--cache-dir DIR`
times both against an existing cache (already warm). Prints both wall
times, ray/local, and whether metrics.csv and per_query.csv are byte-identical.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_run(config: Path, out: Path, cache: Path, extra: list[str]) -> float:
    command = [sys.executable, "-m", "harness.cli", "run", str(config), "--out", str(out),
               "--cache-dir", str(cache), "--no-report", *extra]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--max-queries", type=int)
    parser.add_argument("--cache", choices=["cold", "warm"], default="cold")
    parser.add_argument("--cache-dir", type=Path, help="an existing cache both runs use")
    parser.add_argument("--ray-address")
    args = parser.parse_args()
    common = ["--max-queries", str(args.max_queries)] if args.max_queries else []
    ray = ["--executor", "ray"] + (["--ray-address", args.ray_address] if args.ray_address else [])
    with tempfile.TemporaryDirectory(prefix="ray-vs-local-") as tmp:
        tmp = Path(tmp)
        caches = {"local": tmp / "cache-local", "ray": tmp / "cache-ray"}
        if args.cache == "warm":
            caches = {"local": tmp / "cache", "ray": tmp / "cache"}
            timed_run(args.config, tmp / "fill", caches["local"], common)
        if args.cache_dir:
            caches = {"local": args.cache_dir, "ray": args.cache_dir}
        seconds = {"local": timed_run(args.config, tmp / "local", caches["local"], common),
                   "ray": timed_run(args.config, tmp / "ray", caches["ray"], common + ray)}
        same = {name: (tmp / "local" / name).read_bytes() == (tmp / "ray" / name).read_bytes()
                for name in ("metrics.csv", "per_query.csv")}
    load = os.getloadavg()
    print(f"config {args.config} (max_queries={args.max_queries}, "
          f"cache={args.cache_dir or args.cache}, {os.cpu_count()} cores, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})")
    print(f"local executor: {seconds['local']:8.1f} s")
    print(f"ray executor:   {seconds['ray']:8.1f} s")
    print(f"ray / local:    {seconds['ray'] / seconds['local']:8.2f}")
    for name, equal in same.items():
        print(f"{name}: {'identical' if equal else 'DIFFERENT'}")
    if not all(same.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
