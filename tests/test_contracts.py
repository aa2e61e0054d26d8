"""Every registered plugin — built-in or added later — passes the contracts of harness.testing:
its parameters are all keyed and strictly checked, and its results have the promised shape.

A plugin that needs a model gets a tiny one built on the fly (MODEL_SETTINGS); a new plugin that
needs one fails here until an entry is added, which is the point.
"""
import importlib.util

import numpy as np
import pytest

from harness.core import registry
from harness.core.context import RunContext
from harness.testing import check_ann_search, check_params_contract, check_run
from harness.core.types import Document

CORPUS = {f"d{i}": Document(f"d{i}", title="", text=text) for i, text in enumerate([
    "red apples and green pears", "green tea leaves", "red wine grapes from france",
    "apple pie recipe with red apples", "pears poached in red wine", "black tea with milk",
    "grape juice is sweet", "wine tasting in the valley"])}
QUERIES = {"q1": "red apples", "q2": "green tea", "q3": "red wine grapes"}
QRELS = {"q1": {"d0": 1, "d3": 1}, "q2": {"d1": 1}, "q3": {"d2": 2, "d4": 1}}


@pytest.fixture(scope="module")
def model_settings(tmp_path_factory):
    """Required settings per plugin: tiny local models for those that load one."""
    from tiny_models import (tiny_bert_classifier, tiny_dpr, tiny_sentence_transformer)
    root = tmp_path_factory.mktemp("contract-models")
    st = str(tiny_sentence_transformer(root / "st"))
    question, context = tiny_dpr(root / "dpr")
    settings = {("retriever", "dense"): {"model": st},
                ("retriever", "dpr"): {"question_model": str(question),
                                       "context_model": str(context)},
                ("reranker", "cross-encoder"): {"model": str(tiny_bert_classifier(root / "ce"))},
                ("reranker", "maxsim"): {"model": st},
                ("reranker", "mmr"): {"model": st}}
    if importlib.util.find_spec("colbert") is not None:  # the [colbert] extra
        from test_colbert import tiny_colbert_checkpoint
        settings[("retriever", "colbert")] = {
            "checkpoint": tiny_colbert_checkpoint(root / "colbert"), "doc_maxlen": 32}
    return settings


def _plugins(kind):
    """Built-in plugins of `kind`; one whose optional extra is not installed (make test-compat)
    is skipped, naming what is missing."""
    return [pytest.param(p, id=f"{p.kind}:{p.name}", marks=pytest.mark.skipif(
                not p.available(), reason=f"not installed: {', '.join(p.missing())}"))
            for p in registry.plugins(kind)
            if not p.factory.__module__.startswith(("fake_plugins", "flaky_plugins"))]


@pytest.mark.parametrize("plugin", _plugins(None))
def test_parameters_are_keyed_and_strict(plugin, model_settings):
    checked = check_params_contract(plugin, model_settings.get((plugin.kind, plugin.name), {}))
    fields = [f for f in plugin.params.model_fields if f not in plugin.params.MODEL_FIELDS]
    assert checked or not fields, f"no parameter of {plugin.name} could be varied"


@pytest.mark.parametrize("plugin", _plugins("retriever"))
def test_retriever_results(plugin, model_settings, tmp_path):
    params = plugin.params(**model_settings.get(("retriever", plugin.name), {}))
    ctx = RunContext(cache_dir=tmp_path, threads=1)
    retriever = plugin.factory(params, ctx)
    retriever.index(CORPUS)
    for k in (3, 20):  # 20: more than the corpus holds, nothing padded into the run
        check_run(retriever.search(QUERIES, k), k, CORPUS, QUERIES, f"{plugin.name} k={k}")
    one = retriever.search({"q2": QUERIES["q2"]}, 3)
    assert set(one) == {"q2"}


SMALL_DATA = {"ivf": {"nlist": 4, "nprobe": 4},  # the defaults want more vectors than 40
              "lancedb": {"kind": "exact"}}  # IVF needs 256 vectors per partition


@pytest.mark.parametrize("plugin", _plugins("ann"))
def test_ann_backend_results(plugin, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = np.ascontiguousarray(X[:5] + 0.01, dtype=np.float32)
    params = plugin.params(**SMALL_DATA.get(plugin.name, {}))
    index = plugin.factory(params, RunContext(cache_dir=tmp_path, threads=1))
    index.build(X)
    index.set_search_params(**params.model_dump(include=set(plugin.params.search_fields())))
    for k in (5, 60):  # 60 > 40 vectors: padded with -1
        check_ann_search(index, X, Q, k, f"{plugin.name} k={k}")
    if plugin.exact:
        ids, _ = index.search(Q, 5)
        exact = np.argsort(-(Q @ X.T), axis=1, kind="stable")[:, :5]
        assert (ids == exact).all()


def _input_runs():
    a = {q: {d: float(10 - i) for i, d in enumerate(CORPUS) if i < 6} for q in QUERIES}
    b = {q: {d: float(i) / 3 for i, d in enumerate(CORPUS)} for q in QUERIES}
    return [a, b]


@pytest.mark.parametrize("plugin", _plugins("fuser"))
def test_fuser_results(plugin):
    fused = plugin.factory(plugin.params(), RunContext()).fuse(_input_runs(), 4)
    check_run(fused, 4, CORPUS, QUERIES, plugin.name)
    assert set(fused) == set(QUERIES)


@pytest.mark.parametrize("plugin", _plugins("reranker"))
def test_reranker_results(plugin, model_settings, tmp_path):
    from harness.core.protocols import NeedsCorpus, NeedsQrels
    params = plugin.params(**model_settings.get(("reranker", plugin.name), {}))
    reranker = plugin.factory(params, RunContext(cache_dir=tmp_path, threads=1))
    if isinstance(reranker, NeedsQrels):
        reranker.set_qrels(QRELS)
    if isinstance(reranker, NeedsCorpus):
        reranker.prepare(CORPUS)
    run = _input_runs()[0]
    out = reranker.rerank(QUERIES, CORPUS, run, 3)
    check_run(out, 6, CORPUS, QUERIES, plugin.name)
    for qid in run:  # the same documents; below the depth, the same order
        assert set(out[qid]) == set(run[qid])
        order = sorted(out[qid], key=lambda d: (-out[qid][d], d))
        assert order[3:] == sorted(run[qid], key=lambda d: -run[qid][d])[3:]
