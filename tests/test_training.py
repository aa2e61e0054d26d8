"""Fine-tuning inside the benchmark (harness/training) on tiny models and a tiny dataset: each
trainer learns (its loss falls), trained models are cached by content and reused, the leakage
guard refuses overlapping splits, and trained folders load through the ordinary loaders."""
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("accelerate", reason="the [finetune] extra")
pytest.importorskip("datasets", reason="the [finetune] extra")

from harness.config import validate
from harness.core.context import RunContext
from harness.core.errors import ConfigError
from harness.execution.benchmark import run_benchmark
from harness.training import data, store
from harness.training.spec import TrainSpec
from harness.training.stage import obtain

WORDS = ("cancer virus gene protein cells patients treatment data model search retrieval rank "
         "dense sparse fusion study results effect").split()


@pytest.fixture(scope="module")
def faq(tmp_path_factory):
    """A BEIR folder: 40 answers, 32 training questions, 8 test questions, one answer each; a
    question shares its answer's two topic words, so there is something to learn."""
    folder = tmp_path_factory.mktemp("faq")
    (folder / "qrels").mkdir()
    rng = np.random.default_rng(0)
    docs, queries, qrels = {}, {}, {"train": [], "test": [], "dev": []}
    for i in range(40):
        a, b = rng.choice(len(WORDS), 2, replace=False)
        docs[f"a{i}"] = f"the {WORDS[a]} {WORDS[b]} is in the study of {WORDS[(a + b) % len(WORDS)]}"
        queries[f"q{i}"] = f"{WORDS[a]} and {WORDS[b]}"
        qrels["train" if i < 32 else "test"].append((f"q{i}", f"a{i}"))
    qrels["dev"] = qrels["train"][:4] + qrels["test"][:1]  # overlaps the test queries
    with open(folder / "corpus.jsonl", "w") as fh:
        fh.writelines(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in docs.items())
    with open(folder / "queries.jsonl", "w") as fh:
        fh.writelines(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    for split, rows in qrels.items():
        (folder / "qrels" / f"{split}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in rows))
    return folder


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    from tiny_models import tiny_bert_encoder, tiny_sentence_transformer
    root = tmp_path_factory.mktemp("bases")
    return {"st": str(tiny_sentence_transformer(root / "st")),
            "bert": str(tiny_bert_encoder(root / "bert"))}


def spec(kind, base, **kw):
    defaults = {"epochs": 3, "batch_size": 8, "lr": 1e-3, "warmup_ratio": 0.0, "max_length": 32}
    if kind == "cross_encoder":
        defaults.update(negatives="bm25", num_negatives=2)
    return {"kind": kind, "base": base, **defaults, **kw}


def config(faq, bases, **train_overrides):
    train = {"bi": spec("bi_encoder", bases["st"], negatives="bm25"),
             "tt": spec("two_tower", bases["st"]),
             "ce": spec("cross_encoder", bases["bert"])}
    for name, changes in train_overrides.items():
        train[name] = {**train[name], **changes}
    return validate({
        "name": "ft", "dataset": {"name": str(faq), "split": "test"}, "k": 10, "isolation": "none",
        "measures": ["nDCG@10"], "timing": {"latency_queries": 2, "warmup": 0}, "train": train,
        "pipelines": [
            {"name": "base", "retriever": {"type": "dense", "model": bases["st"]}},
            {"name": "ft", "retriever": {"type": "dense", "model": {"train": "bi"}}},
            {"name": "tt", "retriever": {"type": "dpr", "question_model": {"train": "tt"},
                                         "context_model": {"train": "tt"}, "pooling": "mean",
                                         "normalize": True}},
            {"name": "bm25", "retriever": {"type": "bm25s"},
             "rerank": {"type": "cross-encoder", "model": {"train": "ce"}, "depth": 5}}]})


def ctx(cache):
    return RunContext(cache_dir=cache, threads=1, progress=False)


@pytest.mark.parametrize("kind,base,extra", [("bi_encoder", "st", {"negatives": "base"}),
                                             ("two_tower", "st", {}),
                                             ("cross_encoder", "bert", {}),
                                             ("cross_encoder", "bert", {"loss": "lambda", "epochs": 6})])
def test_each_trainer_learns(faq, bases, tmp_path, kind, base, extra):
    train_spec = TrainSpec(**spec(kind, bases[base], **extra))
    split = data.load("m", train_spec, config(faq, bases))
    trained = obtain("m", train_spec, split, ctx(tmp_path))
    curve = [loss for _, loss in trained.metadata["loss_curve"]]  # one batch per point: noisy
    assert len(curve) >= 9 and np.mean(curve[-4:]) < np.mean(curve[:4]), curve
    assert trained.metadata["data"]["n_examples"] == 32
    assert trained.metadata["samples_per_s"] > 0 and not trained.reused


def test_run_trains_once_then_reuses(faq, bases, tmp_path):
    from harness.storage.results_folder import load_results
    cache = tmp_path / "cache"
    first = run_benchmark(config(faq, bases), tmp_path / "r1", cache_dir=cache, progress=False)
    assert not [r.error for r in first.results if r.error]
    res = load_results(first.out_dir)
    trained = res.metadata["trained_models"]
    assert set(trained) == {"bi", "tt", "ce"} and not any(t["reused"] for t in trained.values())
    # the loss curve and training time sit in timings.csv beside the pipeline that used the model
    assert res.timing("ft", "train:bi", "build", "wall_s") > 0
    assert res.timing("bm25>>cross-encoder@5", "train:ce", "build", "samples_per_s") > 0
    assert any(r.stat.startswith("loss@") for r in res.timings if r.stage == "train:tt")
    assert res.timing("base", "train:bi", "build", "wall_s") is None
    # a trained model is recorded under its folder, which is named by the training key
    assert res.pipelines["ft"].models["retriever:dense"]["model"]["name"].startswith(
        str(cache / "trained" / trained["bi"]["key"]))
    assert "train" in res.config()["pipelines"][1]["retriever"]["model"]  # config as written
    # ... and it is what config_hash hashes, not the config with trained folders in place
    assert res.metadata["config_hash"] == hashlib.sha256(
        (first.out_dir / "config.yaml").read_bytes()).hexdigest()
    assert res.metrics["ft"]["nDCG@10"] != res.metrics["base"]["nDCG@10"]
    from harness.reports.report import build_report
    page = build_report(first.out_dir, tmp_path / "report").read_text(encoding="utf-8")
    assert "Training loss" in page and "(bi, tt, ce)" in page

    second = run_benchmark(config(faq, bases), tmp_path / "r2", cache_dir=cache, progress=False)
    again = load_results(second.out_dir).metadata["trained_models"]
    assert all(t["reused"] for t in again.values())
    assert {n: t["key"] for n, t in again.items()} == {n: t["key"] for n, t in trained.items()}
    assert load_results(second.out_dir).metrics == res.metrics


def test_any_hyperparameter_change_retrains(faq, bases, tmp_path):
    cfg = config(faq, bases)
    split = data.load("bi", cfg.train["bi"], cfg)
    keys = set()
    for change in ({}, {"lr": 5e-4}, {"epochs": 2}, {"seed": 1}, {"negatives": "none"},
                   {"max_length": 16}, {"max_queries": 20}, {"random_negatives": 1}):
        s = TrainSpec(**{**cfg.train["bi"].model_dump(), **change})
        keys.add(store.training_key(s, "fp", data.data_key(s, split), "cpu"))
    assert len(keys) == 8
    assert store.training_key(cfg.train["bi"], "fp", data.data_key(cfg.train["bi"], split),
                              "cpu") in keys  # same spec, same key
    s = cfg.train["bi"]
    assert store.training_key(s, "other-base", data.data_key(s, split), "cpu") not in keys


def test_random_negatives_follow_the_mined_ones(faq, bases, tmp_path):
    cfg = config(faq, bases)
    s = TrainSpec(**{**cfg.train["ce"].model_dump(), "random_negatives": 3})
    split = data.load("ce", s, cfg)
    mined = data.examples(cfg.train["ce"], split, ctx(tmp_path))
    both = data.examples(s, split, ctx(tmp_path))
    assert both == data.examples(s, split, ctx(tmp_path))  # seeded
    texts = [doc.full_text for doc in split.corpus.values()]
    answers = {q: split.corpus[d].full_text for q, docs in split.qrels.items() for d in docs}
    for i, q in enumerate(both.qids):
        assert both.negatives[i][:2] == mined.negatives[i]  # the mined ones are unchanged
        assert len(both.negatives[i]) == 5
        assert answers[q] not in both.negatives[i] or texts.count(answers[q]) > 1  # twin texts
    random_only = TrainSpec(**{**s.model_dump(), "negatives": "none"})
    assert all(len(n) == 3 for n in data.examples(random_only, split, ctx(tmp_path)).negatives)
    with pytest.raises(ValueError, match="random_negatives 0"):
        TrainSpec(**spec("two_tower", bases["st"], random_negatives=1))


def test_seeded_training_is_reproducible(faq, bases, tmp_path):
    from sentence_transformers import SentenceTransformer
    cfg = config(faq, bases)
    s = cfg.train["bi"]
    split = data.load("bi", s, cfg)
    folders = [obtain("bi", s, split, ctx(tmp_path / str(i))).target() for i in range(2)]
    texts = ["cancer and virus", "dense retrieval model"]
    a, b = (SentenceTransformer(f, device="cpu").encode(texts) for f in folders)
    np.testing.assert_allclose(a, b, atol=1e-5)
    base = SentenceTransformer(bases["st"], device="cpu").encode(texts)
    assert not np.allclose(a, base, atol=1e-3)  # it did train


@pytest.mark.parametrize("train_data,match", [
    ({"split": "test"}, "the split this config evaluates"),
    ({"split": "dev"}, r"1 training queries .* judged in the evaluated qrels .* q32")])
def test_leakage_is_refused_before_any_work(faq, bases, tmp_path, train_data, match):
    cfg = config(faq, bases, bi={"data": train_data})
    with pytest.raises(ConfigError, match=match):
        run_benchmark(cfg, tmp_path / "out", cache_dir=tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache" / "trained").exists()


def test_config_references_are_checked(faq, bases):
    good = config(faq, bases).model_dump(mode="json")
    bad = json.loads(json.dumps(good))
    bad["pipelines"][1]["retriever"]["model"] = {"train": "nope"}
    with pytest.raises(ConfigError, match=r"pipelines\[1\]\.retriever\.model: unknown trained "
                                          r"model 'nope'"):
        validate(bad)
    bad = json.loads(json.dumps(good))
    bad["pipelines"][1]["retriever"]["model"] = {"train": "ce"}
    with pytest.raises(ConfigError, match="is a cross_encoder; it can be used as cross-encoder.model"):
        validate(bad)
    with pytest.raises(ConfigError, match=r"train\.bi\.base: model folder .*/missing"):
        validate({**good, "train": {**good["train"], "bi": {**good["train"]["bi"],
                                                             "base": "/nowhere/missing"}}})
    with pytest.raises(ConfigError, match="learns from negatives"):
        validate({**good, "train": {**good["train"], "ce": {**good["train"]["ce"],
                                                             "negatives": "none"}}})


def test_trained_models_load_like_user_models(faq, bases, tmp_path):
    """The folders go through the loaders a user's model goes through: `dense` and
    `cross-encoder` take the exported folder, `dpr` the exported towers (swapped: refused)."""
    from click.testing import CliRunner

    from harness.cli import cli
    from harness.core.types import Document
    from harness.rerankers.cross_encoder import CrossEncoderParams, CrossEncoderReranker
    from harness.retrievers.dense import BiEncoderRetriever, DenseParams
    from harness.retrievers.dpr import DPRParams, DPRRetriever
    cache = tmp_path / "cache"
    out = run_benchmark(config(faq, bases), tmp_path / "r", cache_dir=cache, progress=False)
    trained = json.loads((out.out_dir / "metadata.json").read_text())["trained_models"]
    listing = CliRunner().invoke(cli, ["models", "list", "--cache-dir", str(cache)])
    assert listing.exit_code == 0 and all(t["key"][:12] in listing.output for t in trained.values())
    exported = {}
    for name, t in trained.items():
        dest = tmp_path / "export" / name
        res = CliRunner().invoke(cli, ["models", "export", t["key"][:12], str(dest),
                                       "--cache-dir", str(cache)])
        assert res.exit_code == 0, res.output
        exported[name] = dest
    c = RunContext(cache_dir=tmp_path / "c2", threads=1, progress=False)
    corpus = {"a": Document("a", "", "cancer virus study"), "b": Document("b", "", "dense model")}
    queries = {"q": "cancer and virus"}
    dense = BiEncoderRetriever(DenseParams(model=str(exported["bi"])), c)
    dense.index(corpus)
    assert set(dense.search(queries, 2)["q"]) == {"a", "b"}
    ce = CrossEncoderReranker(CrossEncoderParams(model=str(exported["ce"])), c)
    assert len(ce.score_pairs([("q", "a"), ("q", "b")], queries, corpus)) == 2
    towers = exported["tt"]
    dpr = DPRRetriever(DPRParams(question_model=str(towers / "question"),
                                 context_model=str(towers / "context"), pooling="mean",
                                 normalize=True), c)
    dpr.index(corpus)
    assert set(dpr.search(queries, 2)["q"]) == {"a", "b"}
    with pytest.raises(ConfigError, match="towers swapped"):
        DPRRetriever(DPRParams(question_model=str(towers / "context"),
                               context_model=str(towers / "question"), pooling="mean",
                               normalize=True), c)
    with pytest.raises(ConfigError, match="set pooling: mean"):
        DPRRetriever(DPRParams(question_model=str(towers / "question"),
                               context_model=str(towers / "context"), normalize=True), c)


def test_a_failed_or_killed_training_leaves_nothing_to_reuse(tmp_path):
    import subprocess
    key = "ab" * 32

    def crash(folder):
        (folder / "model").mkdir()
        raise RuntimeError("killed mid-training")

    with pytest.raises(RuntimeError):
        store.save(tmp_path, key, crash)
    assert store.load(tmp_path, key) is None and not list(store.root(tmp_path).iterdir())
    proc = subprocess.Popen(["true"])
    proc.wait()
    stale = store.root(tmp_path) / f".tmp-{key[:16]}-{proc.pid}"  # a killed run's leftovers
    abandoned = store.root(tmp_path) / f".tmp-{'cd' * 8}-{proc.pid}"  # a model never retrained
    running = store.root(tmp_path) / f".tmp-{'ef' * 8}-{os.getpid()}"  # training right now
    foreign = store.root(tmp_path) / ".tmp-not-ours"  # not named by the harness: left alone
    for folder in (stale, abandoned, running, foreign):
        (folder / "model").mkdir(parents=True)
    folder = store.save(tmp_path, key, lambda f: {"spec": {"kind": "bi_encoder"}})
    assert not stale.exists() and not abandoned.exists() and running.exists()
    assert store.load(tmp_path, key)["key"] == key
    assert sorted(p.name for p in store.root(tmp_path).iterdir()) == sorted(
        [folder.name, running.name, foreign.name])
