"""executor: ray — same numbers as the local executor, same failure semantics, encodings that are
the local encoder's bit for bit, and a two-node cluster (head + worker on 127.0.0.1) whose
processes are all gone afterwards. One shared local Ray for the in-process tests."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

pytest.importorskip("ray")

import fake_plugins  # noqa: F401,E402  (registers the plugins)
import flaky_plugins  # noqa: F401,E402
from harness import config as config_mod  # noqa: E402
from harness.core.errors import ConfigError, HarnessError  # noqa: E402
from harness.execution.benchmark import run_benchmark  # noqa: E402
from test_runner import make_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def ray_cluster():
    import ray
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20,
             log_to_driver=False)
    yield ray
    ray.shutdown()


def _meta(out: Path) -> dict:
    return json.loads((out / "metadata.json").read_text())


def test_ci_smoke_metrics_equal_local_and_its_encoding_serves_a_local_run(
        ci_smoke_results, ray_cluster, tmp_path):
    from harness.api import run
    from harness.core.context import RunContext
    from harness.execution.benchmark import prepare_dataset
    from harness.retrievers.dense import MINILM, BiEncoderRetriever, DenseParams
    cache = tmp_path / "cache"  # empty: the Ray Data pool encodes the corpus
    res = run(ROOT / "configs" / "ci-smoke.yaml", tmp_path / "ray", cache_dir=cache,
              executor="ray", progress=False)
    assert not res.failed
    for name in ("metrics.csv", "per_query.csv"):
        assert (res.path / name).read_bytes() == (ci_smoke_results / name).read_bytes(), name
    meta = _meta(res.path)
    assert meta["executor"] == "ray" and _meta(ci_smoke_results)["executor"] == "local"
    node_ids = {n["NodeID"] for n in ray_cluster.nodes()}
    for name, p in meta["pipelines"].items():
        assert p["placement"]["node_id"] in node_ids and p["placement"]["device"] == "cpu", name
    written = [json.loads(f.read_text()) for f in (cache / "embeddings").glob("*.json")]
    assert [d["description"]["executor"] for d in written] == ["ray"]
    # A later local run hits that entry: nothing is encoded again.
    config = config_mod.load(ROOT / "configs" / "ci-smoke.yaml")
    dataset = prepare_dataset(config, None)
    encoder = BiEncoderRetriever(DenseParams(model=MINILM, batch_size=32),
                                 RunContext(cache_dir=cache, threads=1, progress=False))
    encoder.document_arrays(dataset.corpus)
    assert encoder.stats["embedding_cache_hit"] == 1.0 and encoder.forward_passes == 0


def test_ray_encoding_is_bit_identical_to_local_encoding(tiny_beir, ray_cluster, tmp_path):
    from harness.core.context import RunContext
    from harness.datasets import load_dataset
    from harness.execution.ray_encode import encode_with_ray
    from harness.execution.ray_executor import cluster_resources
    from harness.retrievers.dense import MINILM, BiEncoderRetriever, DenseParams
    corpus = load_dataset(str(tiny_beir)).corpus
    texts = [d.full_text for d in corpus.values()]
    ctx = RunContext(cache_dir=tmp_path, threads=1, progress=False)
    # batch_size 2: three batches of different padded lengths, as formed locally
    encoder = BiEncoderRetriever(DenseParams(model=MINILM, batch_size=2), ctx, need_tokens=True)
    local = encoder.encode_documents(texts)
    remote, cost = encode_with_ray(encoder, texts, ctx, cluster_resources(ray_cluster))
    assert set(remote) == set(local) == {"vectors", "token_lengths", "token_vectors",
                                         "token_offsets"}
    for name in local:
        assert remote[name].dtype == local[name].dtype and remote[name].shape == local[name].shape
        assert remote[name].tobytes() == local[name].tobytes(), name
    assert cost["actors"] == 2 and cost["wall_s"] > 0


def test_failures_timeouts_and_memory_caps_keep_their_meaning(tiny_beir, ray_cluster, tmp_path):
    flag = tmp_path / "fail-once"
    flag.write_text("")
    cfg = make_config(tiny_beir, isolation="process", executor="ray", threads=1, pipelines=[
        {"name": "slow", "retriever": {"type": "fake-overlap", "sleep_s": 30}, "timeout_s": 2},
        {"name": "good", "retriever": {"type": "fake-overlap"}},
        {"name": "hog", "retriever": {"type": "fake-overlap", "alloc_mb": 600, "sleep_s": 5},
         "memory_cap_mb": 300},
        {"name": "crash", "retriever": {"type": "fake-overlap", "crash": True}},
        {"name": "flaky", "retriever": {"type": "fake-flaky", "fail_once_file": str(flag)}}])
    out = run_benchmark(cfg, tmp_path / "ray", progress=False)
    meta = _meta(out.out_dir)["pipelines"]
    assert meta["good"]["status"] == "ok"
    assert meta["slow"]["status"] == "failed" and meta["slow"]["reason"].startswith("timeout")
    assert meta["hog"]["status"] == "failed" and "memory cap exceeded" in meta["hog"]["reason"]
    assert meta["crash"]["status"] == "failed" and "SIGKILL" in meta["crash"]["reason"]
    assert meta["flaky"]["status"] == "failed" and \
        meta["flaky"]["reason"] == "RuntimeError: flaky retriever failed once"
    assert all("placement" in p for p in meta.values())
    metrics = (out.out_dir / "metrics.csv").read_text()
    assert "good," in metrics and "slow," not in metrics and "flaky," not in metrics
    # Resumed from the driver's folder: only the flaky node (its flag now gone) is computed.
    again = run_benchmark(cfg, tmp_path / "ray", progress=False)
    assert len(again.computed_nodes) == 1
    assert _meta(again.out_dir)["pipelines"]["flaky"]["status"] == "ok"


def test_a_fusion_entry_reuses_its_inputs_nodes_and_matches_local(tiny_beir, ray_cluster,
                                                                   tmp_path):
    pipelines = [{"name": "a", "retriever": {"type": "fake-overlap"}},
                 {"name": "b", "retriever": {"type": "fake-flaky"}},
                 {"name": "ab", "fuse": {"type": "rrf", "inputs": ["a", "b"]},
                  "rerank": {"type": "fake-shortest", "depth": 2}}]
    outs = {executor: run_benchmark(make_config(tiny_beir, pipelines, isolation="process",
                                                threads=1, executor=executor),
                                    tmp_path / executor, progress=False)
            for executor in ("local", "ray")}
    # the fusion's task started after its inputs' tasks and read their nodes
    assert sorted(outs["ray"].computed_nodes) == sorted(outs["local"].computed_nodes)
    assert len(set(outs["ray"].computed_nodes)) == len(outs["ray"].computed_nodes) == 4
    for name in ("metrics.csv", "per_query.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_executor_settings_are_validated_and_never_change_node_keys(tiny_beir):
    from harness.execution.plan import Planner
    pipelines = [{"name": "a", "retriever": {"type": "fake-overlap"}}]
    with pytest.raises(ConfigError, match="needs isolation: process"):
        make_config(tiny_beir, pipelines, executor="ray")
    with pytest.raises(ConfigError, match="ray_address is only used with executor: ray"):
        make_config(tiny_beir, pipelines, isolation="process", ray_address="auto")
    keys = [[p.leaf.key for p in Planner(make_config(tiny_beir, pipelines, isolation="process",
                                                     **over)).pipelines()]
            for over in ({}, {"executor": "ray", "ray_address": "127.0.0.1:1"})]
    assert keys[0] == keys[1]


def test_missing_ray_names_the_extra(monkeypatch):
    from harness.execution.ray_executor import import_ray
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(HarnessError, match=r"pip install 'retrieval-harness\[ray\]'"):
        import_ray()


# -- two nodes on 127.0.0.1 ---------------------------------------------------------------------

def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _cluster_processes(temp_dir: str) -> list[psutil.Process]:
    """Processes of the test's cluster: each names its session folder under `temp_dir`."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(temp_dir in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def _stop_cluster(temp_dir: str) -> None:
    """Stops this test's head and worker node by their processes' ids (not `ray stop`, which
    would stop every Ray on the machine, the session's local one included)."""
    for _ in range(3):
        procs = _cluster_processes(temp_dir)
        if not procs:
            return
        for proc in procs:
            try:
                proc.terminate()
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(procs, timeout=5)
        for proc in alive:
            try:
                proc.kill()
            except psutil.Error:
                pass


@contextmanager
def two_node_cluster():
    """A head and one worker node, 1 CPU each, on 127.0.0.1: (address, env, temp_dir)."""
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's socket paths are limited
    port = 20000 + os.getpid() % 10000
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "RAY_USAGE_STATS_ENABLED": "0",
           # Ray >= 2.5x: a head started by `ray start` requires a token (~/.ray/auth_token),
           # which the worker node and the driver present only in token mode.
           "RAY_AUTH_MODE": "token"}
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    try:
        subprocess.run([_ray_cli(), "start", "--head", "--port", str(port), "--temp-dir",
                        temp_dir, "--include-dashboard", "false", *common], env=env, check=True,
                       capture_output=True, timeout=180)
        subprocess.run([_ray_cli(), "start", "--address", f"127.0.0.1:{port}", *common], env=env,
                       check=True, capture_output=True, timeout=180)
        yield f"127.0.0.1:{port}", env, temp_dir
    finally:
        _stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)  # its logs


def test_two_nodes_run_pipelines_on_both_with_the_local_numbers(tiny_beir, tmp_path):
    pipelines = [{"name": f"p{i}", "retriever": {"type": "fake-overlap", "sleep_s": 2}}
                 for i in range(4)]
    config = tmp_path / "c.yaml"
    config.write_text(config_mod.dump(make_config(tiny_beir, pipelines, isolation="process",
                                                  threads=1)))
    command = [sys.executable, "-m", "harness.cli", "run", str(config), "--no-report",
               "--plugins", "fake_plugins"]
    with two_node_cluster() as (address, env, temp_dir):
        assert len(_cluster_processes(temp_dir)) >= 4  # two raylets, gcs, ...: it is running
        for name, extra in (("local", []), ("ray", ["--ray-address", address])):
            res = subprocess.run([*command, "--out", str(tmp_path / name), *extra], env=env,
                                 capture_output=True, text=True, timeout=600)
            assert res.returncode == 0, res.stderr[-3000:]
    assert not _cluster_processes(temp_dir), "Ray processes left running"
    for name in ("metrics.csv", "per_query.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    meta = _meta(tmp_path / "ray")
    assert meta["executor"] == "ray"
    placed = {p["placement"]["node_id"] for p in meta["pipelines"].values()}
    assert len(placed) == 2, meta["pipelines"]  # SPREAD over two 1-CPU nodes
    # the node's address as the cluster reports it (Ray may report the host's routable one)
    assert all(isinstance(p["placement"]["ip"], str) and p["placement"]["hostname"]
               for p in meta["pipelines"].values())


def test_two_node_cluster_is_gone_after_an_error():
    with pytest.raises(RuntimeError, match="boom"):
        with two_node_cluster() as (_, _, temp_dir):
            assert _cluster_processes(temp_dir)
            raise RuntimeError("boom")
    assert not _cluster_processes(temp_dir), "Ray processes left running"


def test_a_run_without_address_starts_its_own_ray_and_stops_it(tiny_beir, tmp_path):
    temp_dir = tempfile.mkdtemp(prefix="rl", dir="/tmp")  # where that Ray keeps its sessions
    config = tmp_path / "c.yaml"
    config.write_text(config_mod.dump(make_config(
        tiny_beir, [{"name": "a", "retriever": {"type": "fake-overlap"}}], isolation="process",
        threads=1)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "RAY_TMPDIR": temp_dir, "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        res = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(config),
                              "--no-report", "--plugins", "fake_plugins", "--executor", "ray",
                              "--out", str(tmp_path / "out")], env=env, capture_output=True,
                             text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        assert any(Path(temp_dir).iterdir()), "the run's Ray did not use RAY_TMPDIR"
        deadline = time.monotonic() + 30  # ray.shutdown() returns before every process exits
        while _cluster_processes(temp_dir) and time.monotonic() < deadline:
            time.sleep(1)
        assert not _cluster_processes(temp_dir), "Ray processes left running"
        assert _meta(tmp_path / "out")["pipelines"]["a"]["placement"]["device"] == "cpu"
    finally:
        _stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
