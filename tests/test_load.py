"""`harness load`: client processes against a pipeline's index, HDR percentiles over all
requests, errors counted, rows under stage `load` in the run's folder and plotted in its report."""
import json

import numpy as np
import pytest

from harness.core.errors import ConfigError
from harness.execution import load


class FailingEveryThird:
    """A client whose every third request raises (picklable: spawned clients import tests/)."""

    def open(self):
        self.n = 0
        return self

    def search(self, Q, k):
        self.n += 1
        if self.n % 3 == 0:
            raise RuntimeError("server went away")
        return np.zeros((1, k), np.int64), np.zeros((1, k), np.float32)


def test_errors_are_counted_never_dropped_and_levels_are_bounded():
    Q = np.zeros((5, 4), np.float32)
    level = load.run_level(("shared", FailingEveryThird()), Q, 3, clients=2, duration_s=0.5)
    assert level.requests > 0 and level.errors > 0
    assert abs(level.errors - level.requests / 2) <= 2  # one failure per two successes, per client
    assert level.first_error == "RuntimeError: server went away"
    assert 0 < level.p50_ms <= level.p95_ms <= level.p99_ms and level.qps > 0
    assert level.duration_s == pytest.approx(0.5, abs=0.2)
    with pytest.raises(ConfigError, match=r"--clients 100 out of range 1..64"):
        load.check_levels([1, 100], 1)
    with pytest.raises(ConfigError, match=r"--duration 0 out of range"):
        load.check_levels([1], 0)


def test_load_on_a_run_folder_writes_rows_json_and_report_plots(tiny_beir, tmp_path,
                                                                 tmp_path_factory, monkeypatch):
    import yaml
    from harness.execution.benchmark import run_benchmark
    from harness import config as config_mod
    from harness.storage.results_folder import load_results
    from tiny_models import tiny_sentence_transformer
    model = str(tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "model"))
    data = {"name": "ld", "dataset": {"name": str(tiny_beir)}, "k": 3, "isolation": "none",
            "measures": ["nDCG@3"], "timing": {"latency_queries": 2, "warmup": 1},
            "pipelines": [{"name": "dense", "retriever": {"type": "dense", "model": model,
                                                          "index": [{"type": "flat"},
                                                                    {"type": "hnsw"}]}}]}
    path = tmp_path / "ld.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    run_benchmark(config_mod.load(path), out, progress=False)
    with pytest.raises(ConfigError, match=r"no pipeline 'nope'.*choices: dense/flat, dense/hnsw"):
        load.load_into_folder(path, out, "nope", [1], 0.2)
    with pytest.raises(ConfigError, match=r"not a results folder; run `harness run"):
        load.load_into_folder(path, tmp_path / "empty", "dense/hnsw", [1], 0.2)
    cores = __import__("os").cpu_count()
    result = load.load_into_folder(path, out, "dense/hnsw", [1, cores + 1], 0.5)
    assert [lv.clients for lv in result.levels] == [1, cores + 1]
    assert [lv.oversubscribed for lv in result.levels] == [False, True]
    assert all(lv.errors == 0 and lv.requests > 0 for lv in result.levels)
    folder = load_results(out)
    rows = {(r.mode, r.stat): r.value for r in folder.timings
            if (r.pipeline, r.stage) == ("dense/hnsw", "load")}
    assert rows[("clients=1", "clients")] == 1 and rows[(f"clients={cores + 1}", "errors")] == 0
    assert rows[("clients=1", "p99_ms")] >= rows[("clients=1", "p50_ms")] > 0
    assert ("dense/hnsw", "ann_search") in {(r.pipeline, r.stage) for r in folder.timings}  # kept
    # A second load of the pipeline replaces its rows; the other pipeline's are added beside.
    load.load_into_folder(path, out, "dense/hnsw", [1], 0.2)
    load.load_into_folder(path, out, "dense/flat", [2], 0.2)
    folder = load_results(out)
    modes = {(r.pipeline, r.mode) for r in folder.timings if r.stage == "load"}
    assert modes == {("dense/hnsw", "clients=1"), ("dense/flat", "clients=2")}
    record = json.loads((out / "load.json").read_text())
    assert set(record) == {"dense/hnsw", "dense/flat"} and record["dense/flat"]["backend"] == "flat"
    from harness.reports.plots import load_curves
    plots = load_curves(folder)
    assert [p.key for p in plots] == ["load-qps", "load-p99"]
    assert all("dense/hnsw" in p.svg and "dense/flat" in p.svg for p in plots)
    from harness.reports.report import build_report
    html = build_report(out, tmp_path / "report").read_text()
    assert "q/s vs clients" in html and "p99 vs q/s" in html
