"""Node keys: every input that changes a node's results or timings changes its key; writing a
default explicitly does not. Tolerance classes come from the plugins' declared metadata."""
import pytest

from harness import config as config_mod
from harness.core.context import RunContext
from harness.execution.plan import Planner


def plan(ctx=None, **over):
    data = {"name": "t", "dataset": {"name": "scifact"}, "measures": ["nDCG@10"], "k": 100,
            "pipelines": [{"name": "a", "retriever": {"type": "bm25s"}}]}
    data.update(over)
    cfg = config_mod.validate(data)
    return {p.name: p for p in Planner(cfg, ctx or RunContext(dataset_key="d", threads=2)).pipelines()}


def key(**over):
    return plan(**over)["a"].leaf.key


def test_fusion_depth_is_part_of_the_key():
    """Defect 1: `depth` of a fuser was dropped from the key, so two rrf entries differing only
    in depth shared one node (and a resume after changing depth reused the stale run)."""
    pipes = [{"name": "x", "retriever": {"type": "bm25s"}},
             {"name": "y", "retriever": {"type": "bm25s", "k1": 1.2}},
             {"name": "f10", "fuse": {"type": "rrf", "inputs": ["x", "y"], "depth": 10}},
             {"name": "f50", "fuse": {"type": "rrf", "inputs": ["x", "y"], "depth": 50}}]
    p = plan(pipelines=pipes)
    assert p["f10"].leaf.key != p["f50"].leaf.key
    assert p["f10"].leaf.inputs == p["f50"].leaf.inputs  # the first stages are still shared


@pytest.mark.parametrize("field, value", [
    ("seed", 1), ("deterministic", True), ("k", 50), ("timing", {"latency_queries": 10}),
    ("timing", {"warmup": 0})])
def test_run_settings_change_every_key(field, value):
    """Defect 5: seed, deterministic and timing were not keyed."""
    assert key(**{field: value}) != key()


def test_device_threads_and_dataset_change_the_key():
    assert key(ctx=RunContext(dataset_key="d", threads=1)) != key()
    assert key(ctx=RunContext(dataset_key="d", threads=2, device="cuda")) != key()
    assert key(ctx=RunContext(dataset_key="other", threads=2)) != key()


def test_explicit_defaults_do_not_change_the_key():
    explicit = [{"name": "a", "retriever": {"type": "bm25s", "k1": 0.9, "b": 0.4, "stemmer": "english"}}]
    assert key(pipelines=explicit) == key()
    dense = {"type": "dense", "index": {"type": "hnsw"}}
    dense_explicit = {"type": "dense", "batch_size": 64, "index": {
        "type": "hnsw", "build": {"M": 16}, "search": {"ef": 64}}}
    # k <= the default ef: an hnsw point with ef < k is refused
    assert key(pipelines=[{"name": "a", "retriever": dense}], k=64) == \
        key(pipelines=[{"name": "a", "retriever": dense_explicit}], k=64)
    dense_explicit["index"]["search"]["ef"] = 128
    assert key(pipelines=[{"name": "a", "retriever": dense}], k=64) != \
        key(pipelines=[{"name": "a", "retriever": dense_explicit}], k=64)


def test_model_fingerprint_not_name_is_keyed(tmp_path):
    """Defect 5: a model folder whose weights changed kept its key (only the name was keyed)."""
    from tiny_models import tiny_sentence_transformer
    folder = tiny_sentence_transformer(tmp_path / "m", seed=0)
    pipes = [{"name": "a", "retriever": {"type": "dense", "model": str(folder)}}]
    before = key(pipelines=pipes)
    tiny_sentence_transformer(tmp_path / "m", seed=1)  # same path, other weights
    from harness.core import models
    models._file_hashes.clear()
    assert key(pipelines=pipes) != before


def test_rerank_nodes_share_one_plugin_instance_across_depths_and_parents():
    pipes = [{"name": "a", "retriever": {"type": "bm25s"},
              "rerank": {"type": "oracle", "depth": [5, 10]}},
             {"name": "b", "retriever": {"type": "bm25s", "k1": 1.2},
              "rerank": {"type": "oracle", "depth": 5}}]
    p = plan(pipelines=pipes)
    nodes = [p[n].leaf for n in ("a>>oracle@5", "a>>oracle@10", "b>>oracle@5")]
    assert len({n.key for n in nodes}) == 3 and len({n.plugin_key for n in nodes}) == 1


def test_tolerance_classes_come_from_declared_plugin_metadata():
    pipes = [{"name": "bm", "retriever": {"type": "bm25s"},
              "rerank": {"type": "oracle", "depth": 5}},
             {"name": "d", "retriever": {"type": "dense", "index": {"type": "flat"}},
              "rerank": {"type": "maxsim", "depth": 5}},
             {"name": "h", "retriever": {"type": "dense", "index": {"type": "hnsw"}}},
             {"name": "f", "fuse": {"type": "rrf", "inputs": ["bm", "h"]}},
             {"name": "g", "fuse": {"type": "rrf", "inputs": ["bm", "d"]}}]
    p = plan(pipelines=pipes, k=64)  # k <= hnsw's default ef
    assert {n: x.tolerance_class for n, x in p.items()} == {
        "bm": "deterministic", "bm>>oracle@5": "deterministic",  # the oracle is exact
        "d": "deterministic", "d>>maxsim@5": "model", "h": "ann",
        "f": "ann", "g": "deterministic"}


def test_any_plugin_parameter_can_be_swept():
    """`sweep:` (PyTerrier's GridScan): each combination is its own pipeline and node."""
    pipes = [{"name": "a", "retriever": {"type": "bm25s", "sweep": {"k1": [0.9, 1.2], "b": [0.4, 0.75]}},
              "rerank": {"type": "oracle", "depth": [5, 10]}},
             {"name": "f", "fuse": {"type": "rrf", "inputs": ["a[k1=0.9,b=0.4]", "a[k1=1.2,b=0.4]"],
                                    "sweep": {"k": [10, 60]}}}]
    p = plan(pipelines=pipes)
    firsts = [n for n in p if n.startswith("a[") and ">>" not in n]
    assert firsts == ["a[k1=0.9,b=0.4]", "a[k1=0.9,b=0.75]", "a[k1=1.2,b=0.4]", "a[k1=1.2,b=0.75]"]
    assert len({p[n].leaf.key for n in firsts}) == 4
    assert p["a[k1=1.2,b=0.75]"].leaf.spec.plugin_params() == {"k1": 1.2, "b": 0.75}
    assert "a[k1=1.2,b=0.4]>>oracle@10" in p and p["f[k=10]"].leaf.key != p["f[k=60]"].leaf.key
    # a swept value equal to the default is the same node as the plain entry
    plain = plan(pipelines=[{"name": "a", "retriever": {"type": "bm25s"}}])["a"].leaf.key
    assert p["a[k1=0.9,b=0.4]"].leaf.key == plain


@pytest.mark.parametrize("retriever, message", [
    ({"type": "bm25s", "sweep": {"k1": [0.9, -1.0]}},
     r"pipelines\[0\]\.retriever\.k1: .*greater than or equal to 0.* \(sweep point \[k1=-1\.0\]\)"),
    ({"type": "bm25s", "k1": 0.9, "sweep": {"k1": [1.2]}}, r"sweep\.k1: also given as a fixed value"),
    ({"type": "bm25s", "sweep": {"k1": []}}, r"sweep\.k1: give at least one value"),
    ({"type": "dense", "sweep": {"index": [{"type": "flat"}]}}, r"sweep\.index: not a sweepable"),
])
def test_bad_sweeps_are_refused_naming_the_point(retriever, message):
    from harness.core.errors import ConfigError
    with pytest.raises(ConfigError, match=message):
        plan(pipelines=[{"name": "a", "retriever": retriever}])


def test_swept_points_give_the_results_of_fixed_entries(tiny_beir, tmp_path):
    from harness.execution.benchmark import run_benchmark
    from test_runner import make_config
    swept = make_config(tiny_beir, [{"name": "a", "retriever": {
        "type": "bm25s", "stemmer": None, "sweep": {"k1": [0.5, 2.0]}}}])
    fixed = make_config(tiny_beir, [{"name": f"a[k1={k1}]", "retriever": {
        "type": "bm25s", "stemmer": None, "k1": k1}} for k1 in (0.5, 2.0)])
    a = run_benchmark(swept, tmp_path / "swept", progress=False).out_dir
    b = run_benchmark(fixed, tmp_path / "fixed", progress=False).out_dir
    assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()
    from harness.storage.trec import read_run
    runs = [read_run(path) for path in sorted((a / "runs").glob("*.trec"))]
    assert len(runs) == 2 and runs[0] != runs[1]  # k1 took effect: other scores
