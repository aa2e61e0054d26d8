"""Inference backends (torch, onnx, onnx-int8, torch-fp16/bf16): export + load round trips on tiny
models built on the fly, the export cache, the keys, and the errors."""
import csv
import json
import logging

import numpy as np
import pytest

pytest.importorskip("optimum", reason="the [onnx] extra")

from harness import config as config_mod
from harness.core import inference_backends as ib
from harness.core.context import RunContext
from harness.core.errors import ConfigError, PluginError
from harness.execution.benchmark import run_benchmark
from tiny_models import (tiny_bert_classifier, tiny_bert_encoder, tiny_dpr,
                         tiny_sentence_transformer)

TEXTS = ["protein in cancer cells", "dense search model", "the treatment effect was high",
         "virus gene data and patients with low protein in a study of the results"]


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    return str(tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "tiny-st"))


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory):
    return str(tiny_bert_classifier(tmp_path_factory.mktemp("ce") / "tiny-ce", seed=3))


def load(kind, path, backend, cache_dir, **kwargs):
    return ib.load(kind, path, backend, "cpu", 1, cache_dir, "test", **kwargs)


def test_onnx_round_trip_matches_torch_and_is_cached(tiny_st, tmp_path):
    torch_model, stats = load("sentence-transformer", tiny_st, "torch", tmp_path)
    assert stats == {"backend": "torch"} and not (tmp_path / "backends").exists()
    reference = torch_model.encode(TEXTS, convert_to_numpy=True)

    model, first = load("sentence-transformer", tiny_st, "onnx", tmp_path)
    assert first["backend_cache_hit"] == 0.0 and first["backend_build_wall_s"] > 0
    assert first["onnx_intra_op_threads"] == 1 and first["backend_quantization"] is None
    folder = tmp_path / "backends" / first["backend_key"]
    assert (folder / "onnx" / "model.onnx").is_file() and (folder / "export.json").is_file()
    np.testing.assert_allclose(model.encode(TEXTS, convert_to_numpy=True), reference, atol=1e-4)

    again, second = load("sentence-transformer", tiny_st, "onnx", tmp_path)  # same backend: hit
    assert second["backend_cache_hit"] == 1.0 and second["backend_key"] == first["backend_key"]
    assert second["backend_build_wall_s"] == first["backend_build_wall_s"]  # the miss's cost
    np.testing.assert_allclose(again.encode(TEXTS, convert_to_numpy=True), reference, atol=1e-4)
    assert [p.name for p in (tmp_path / "backends").iterdir()] == [first["backend_key"]]


def test_onnx_int8_round_trip_is_a_separate_quantised_export(tiny_st, tmp_path, caplog):
    _, fp32 = load("sentence-transformer", tiny_st, "onnx", tmp_path)
    with caplog.at_level(logging.INFO):
        model, int8 = load("sentence-transformer", tiny_st, "onnx-int8", tmp_path)
    # The quantiser's line per tensor (INFO, root logger) is kept out of the run's log.
    assert not [r for r in caplog.records if r.name == "root" and r.levelno < logging.WARNING]
    assert int8["backend_key"] != fp32["backend_key"]  # backend change: a new entry
    assert int8["backend_quantization"] == ib.quantization_preset()
    folder = tmp_path / "backends" / int8["backend_key"]
    assert (folder / "onnx" / f"model_qint8_{ib.quantization_preset()}.onnx").is_file()
    torch_model, _ = load("sentence-transformer", tiny_st, "torch", tmp_path)
    want = torch_model.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    got = model.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    cosines = (want * got).sum(axis=1)
    assert np.all(cosines > 0.98), cosines  # close to torch, not equal: int8 weights
    assert not np.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_cross_encoder_round_trip(tiny_ce, tmp_path, backend):
    from harness.core import registry
    plugin = registry.get("reranker", "cross-encoder")
    ctx = RunContext(device="cpu", cache_dir=tmp_path)
    queries = {"q": "protein cells"}
    from harness.core.types import Document
    corpus = {f"d{i}": Document(f"d{i}", "", t) for i, t in enumerate(TEXTS)}
    pairs = [("q", d) for d in corpus]
    want = plugin.factory(plugin.params(model=tiny_ce), ctx).score_pairs(pairs, queries, corpus)
    ce = plugin.factory(plugin.params(model=tiny_ce, backend=backend), ctx)
    got = ce.score_pairs(pairs, queries, corpus)
    assert ce.stage_stats()["backend"] == backend
    # A random head gives logits near 0: int8's error is judged in absolute terms.
    np.testing.assert_allclose(got, want, atol=1e-4 if backend == "onnx" else 1e-3)
    if backend == "onnx-int8":
        assert got != want  # quantised weights: close, not equal


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_two_tower_onnx_round_trip(tmp_path, pooling):
    """Plain Hugging Face towers go through optimum's feature-extraction export."""
    from harness.retrievers.dpr import DPRParams, DPRRetriever
    question = str(tiny_bert_encoder(tmp_path / "q", seed=1))
    context = str(tiny_bert_encoder(tmp_path / "c", seed=2))
    ctx = RunContext(cache_dir=tmp_path / "cache", progress=False)
    towers = {b: DPRRetriever(DPRParams(question_model=question, context_model=context,
                                        pooling=pooling, backend=b), ctx)
              for b in ("torch", "onnx")}
    docs = {b: t.encode_documents(TEXTS)["vectors"] for b, t in towers.items()}
    queries = {b: t.encode_queries(TEXTS[:2]) for b, t in towers.items()}
    np.testing.assert_allclose(docs["onnx"], docs["torch"], atol=1e-4)
    np.testing.assert_allclose(queries["onnx"], queries["torch"], atol=1e-4)
    assert towers["onnx"].encoder_key()["backend"] == "onnx"
    assert "backend" not in towers["torch"].encoder_key()  # published torch keys unchanged
    assert towers["onnx"].stage_stats()["backend_build_wall_s"] > 0
    assert len(list((tmp_path / "cache" / "backends").iterdir())) == 2  # one export per tower


def test_dpr_checkpoint_refuses_onnx_clearly(tmp_path):
    from harness.retrievers.dpr import DPRParams, DPRRetriever
    question, context = tiny_dpr(tmp_path / "dpr")
    with pytest.raises(ConfigError, match="DPR checkpoint.*cannot export to ONNX"):
        DPRRetriever(DPRParams(question_model=str(question), context_model=str(context),
                               backend="onnx"), RunContext(cache_dir=tmp_path))


def test_half_precision_needs_cuda():
    with pytest.raises(ConfigError, match="torch-fp16.*needs a CUDA device"):
        ib.check_backend("torch-fp16", "cpu", "dense")
    with pytest.raises(ConfigError, match="torch-bf16"):
        ib.check_backend("torch-bf16", "cpu", "maxsim")


def test_missing_onnxruntime_names_the_install_hint(monkeypatch):
    monkeypatch.setattr(ib, "_importable", lambda module: module != "onnxruntime")
    with pytest.raises(PluginError, match=r"needs onnxruntime.*pip install 'retrieval-harness\[onnx\]'"):
        ib.check_backend("onnx", "cpu", "dense")
    ib.check_backend("torch", "cpu", "dense")  # torch needs none of it


def test_default_backend_is_not_keyed_and_others_are():
    from harness.rerankers.cross_encoder import CrossEncoderParams
    from harness.rerankers.maxsim import MaxSimParams
    from harness.retrievers.dense import DenseParams
    from harness.retrievers.dpr import DPRParams
    for cls in (DenseParams, MaxSimParams, CrossEncoderParams, DPRParams):
        default = cls().resolved()
        assert "backend" not in default and cls(backend="torch").resolved() == default
        assert cls(backend="onnx").resolved()["backend"] == "onnx"
        assert cls(backend="onnx").resolved() != cls(backend="onnx-int8").resolved()


def metrics(out) -> dict:
    with open(out.out_dir / "metrics.csv") as fh:
        return {(r["pipeline"], r["measure"]): float(r["value"]) for r in csv.DictReader(fh)}


def test_backend_sweep_through_the_runner(tiny_beir, tiny_st, tmp_path):
    """One config compares backends: a sweep point per backend, a separate embedding-cache entry
    per backend (onnx and torch agree within model noise), MaxSim sharing the dense entry of its
    backend, and a second run that encodes and exports nothing."""
    cfg = config_mod.validate({
        "name": "backends", "dataset": {"name": str(tiny_beir)}, "k": 5, "isolation": "none",
        "measures": ["nDCG@5"], "timing": {"latency_queries": 2, "warmup": 1},
        "pipelines": [{"name": "dense",
                       "retriever": {"type": "dense", "model": tiny_st,
                                     "sweep": {"backend": ["torch", "onnx"]}},
                       "rerank": {"type": "maxsim", "model": tiny_st, "depth": 3,
                                  "sweep": {"backend": ["onnx"]}}}]})
    cache = tmp_path / "cache"
    out = run_benchmark(cfg, tmp_path / "out", cache_dir=cache, progress=False)
    assert all(r.error is None for r in out.results)
    got = metrics(out)
    names = sorted({p for p, _ in got})
    assert "dense[backend=torch]" in names and "dense[backend=onnx]" in names
    assert got[("dense[backend=onnx]", "nDCG@5")] == pytest.approx(
        got[("dense[backend=torch]", "nDCG@5")], abs=1e-4)
    entries = sorted((cache / "embeddings").glob("*.json"))
    backends = sorted(json.loads(p.read_text())["description"]["encoder"].get("backend", "torch")
                      for p in entries)
    assert backends == ["onnx", "torch"]  # the onnx entry also holds MaxSim's token embeddings
    meta = json.loads((out.out_dir / "metadata.json").read_text())["pipelines"]
    stats = meta["dense[backend=onnx]"]["stage_stats"]
    assert [s["backend"] for s in stats.values()] == ["onnx"]
    exports = sorted(p.name for p in (cache / "backends").iterdir())
    assert len(exports) == 1

    # The report pairs the onnx point with its torch twin (the rerank points mix backends: no twin).
    from harness.reports.backends import backend_rows
    from harness.reports.report import build_report
    from harness.storage.results_folder import load_results
    rows = backend_rows(load_results(out.out_dir), "nDCG@5")
    assert [(r.pipeline, r.torch_pipeline, r.backends) for r in rows] == [
        ("dense[backend=onnx]", "dense[backend=torch]", "onnx")]
    assert rows[0].comparison.delta == pytest.approx(0.0, abs=1e-4)
    assert rows[0].encode_ratio > 0 and rows[0].p95_ratio > 0 and rows[0].batch_ratio > 0
    html = build_report(out.out_dir, tmp_path / "report")
    assert "Backends against torch fp32" in html.read_text()
    assert "dense[backend=onnx]" in (tmp_path / "report" / "summary.md").read_text().split(
        "## Backends against torch fp32")[1]

    again = run_benchmark(cfg, tmp_path / "out2", cache_dir=cache, progress=False)
    assert metrics(again) == got
    assert sorted((cache / "embeddings").glob("*.json")) == entries
    assert sorted(p.name for p in (cache / "backends").iterdir()) == exports
