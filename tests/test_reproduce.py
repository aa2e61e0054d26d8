"""The saved config.yaml is the run's whole recipe: re-running it into a fresh folder reproduces
metrics.csv byte for byte, and its sha256 is the recorded config_hash (quickstart on a slice)."""
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from harness import config as config_mod
from harness.execution.benchmark import run_benchmark

pytestmark = pytest.mark.slow
QUICKSTART = Path(__file__).resolve().parent.parent / "configs" / "quickstart.yaml"


def test_saved_config_reproduces_metrics_byte_for_byte(tmp_path):
    data = yaml.safe_load(QUICKSTART.read_text())
    data["dataset"]["slice"] = {"queries": 15, "extra_docs": 40, "seed": 0}
    data.update(isolation="none", timing={"latency_queries": 3, "warmup": 1})
    data["pipelines"][1]["retriever"]["stemmer"] = None  # an explicit null must survive the save
    first = run_benchmark(config_mod.validate(data), tmp_path / "first", progress=False).out_dir
    saved = first / "config.yaml"
    meta = json.loads((first / "metadata.json").read_text())
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == meta["config_hash"]
    assert all(p["status"] == "ok" for p in meta["pipelines"].values()), meta["pipelines"]
    again = run_benchmark(config_mod.load(saved), tmp_path / "again", progress=False).out_dir
    assert (again / "config.yaml").read_bytes() == saved.read_bytes()
    assert (again / "metrics.csv").read_bytes() == (first / "metrics.csv").read_bytes()
