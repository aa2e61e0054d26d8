"""A run killed with SIGKILL part-way resumes: finished nodes are not recomputed and the metrics
equal an uninterrupted run's, byte for byte."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml


TESTS = Path(__file__).resolve().parent


def harness_run(config, out, wait=True):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "harness.cli", "run", str(config), "--out", str(out),
           "--plugins", "fake_plugins", "--no-report"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    if wait:
        output = proc.communicate(timeout=300)[0].decode()
        assert proc.returncode == 0, output
    return proc


def computed_nodes(out):
    return json.loads((out / "metadata.json").read_text())["nodes"]["computed"]


def test_sigkill_then_resume_matches_uninterrupted_run(tiny_beir, tmp_path):
    started = tmp_path / "second-started"
    config = tmp_path / "kill.yaml"
    config.write_text(yaml.safe_dump({
        "name": "kill", "dataset": {"name": str(tiny_beir)}, "k": 10, "measures": ["nDCG@10", "R@10"],
        "timing": {"latency_queries": 2, "warmup": 0},
        "pipelines": [
            {"name": "first", "retriever": {"type": "fake-overlap"},
             "rerank": {"type": "fake-shortest", "depth": 2}},
            {"name": "second", "retriever": {"type": "fake-overlap", "sleep_s": 3,
                                             "started_file": str(started)}},
            {"name": "third", "retriever": {"type": "bm25s", "stemmer": None}}]}))

    proc = harness_run(config, tmp_path / "run", wait=False)
    deadline = time.time() + 120
    while not started.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "the run never reached the sleeping node"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its workers, in the middle of a node
    proc.wait()
    assert not (tmp_path / "run" / "metrics.csv").exists()  # nothing there reads as complete
    finished = sorted(p.name for p in (tmp_path / "run" / "nodes").glob("*.json"))
    assert len([f for f in finished if not f.startswith("total-")]) == 2  # first, first>>rerank

    harness_run(config, tmp_path / "run")               # resume in place
    assert computed_nodes(tmp_path / "run") == 2        # only `second` and `third`
    harness_run(config, tmp_path / "clean")             # the uninterrupted reference
    assert computed_nodes(tmp_path / "clean") == 4
    assert (tmp_path / "run" / "metrics.csv").read_bytes() == \
        (tmp_path / "clean" / "metrics.csv").read_bytes()
    assert (tmp_path / "run" / "per_query.csv").read_bytes() == \
        (tmp_path / "clean" / "per_query.csv").read_bytes()
