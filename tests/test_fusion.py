import math
import random

import pytest

from harness.core import registry
from harness.core.context import RunContext
from harness.core.errors import ConfigError, DataError
from harness.fusion import CombSumFuser, CombSumParams, RRFFuser, RRFParams
from harness.core.types import ranked

# Two first-stage runs of one query. Ranks: A: d1, d2, d3; B: d3, d1, d4.
A = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}}
B = {"q1": {"d3": 5.0, "d1": 1.0, "d4": 0.0}}


def order(docs):
    return [doc_id for doc_id, _ in ranked(docs)]


def test_plugins_are_registered_and_built_by_the_registry():
    rrf = registry.get("fuser", "rrf")
    fuser = rrf.factory(rrf.params(k=10), RunContext())
    assert fuser.fuse([A, B], k=2) == {"q1": {"d1": 1 / 11 + 1 / 12, "d3": 1 / 13 + 1 / 11}}
    assert isinstance(registry.get("fuser", "combsum").factory(CombSumParams(), RunContext()),
                      CombSumFuser)


def test_rrf_hand_computed():
    fused = RRFFuser(RRFParams()).fuse([A, B], k=10)["q1"]
    assert fused == pytest.approx({"d1": 1 / 61 + 1 / 62, "d3": 1 / 63 + 1 / 61,
                                   "d2": 1 / 62, "d4": 1 / 63}, rel=1e-15)
    assert order(fused) == ["d1", "d3", "d2", "d4"]


def test_rrf_weights_depth_and_output_k():
    params = RRFParams(k=10, depth=[2, 1], weights=[2.0, 1.0])
    fused = RRFFuser(params).fuse([A, B], k=10)["q1"]
    # A cut to d1, d2; B cut to d3; d4 is below both depths.
    assert fused == pytest.approx({"d1": 2 / 11, "d2": 2 / 12, "d3": 1 / 11}, rel=1e-15)
    assert list(RRFFuser(params).fuse([A, B], k=2)["q1"]) == ["d1", "d2"]
    # One depth for every run.
    assert set(RRFFuser(RRFParams(depth=1)).fuse([A, B], k=10)["q1"]) == {"d1", "d3"}


def test_rrf_ranks_ties_by_doc_id_descending_not_input_order():
    tied = {"q1": {"a": 1.0, "c": 1.0, "b": 1.0}}  # trec_eval order: c, b, a
    fused = RRFFuser(RRFParams()).fuse([tied], k=3)["q1"]
    assert fused == pytest.approx({"c": 1 / 61, "b": 1 / 62, "a": 1 / 63}, rel=1e-15)


def test_rrf_of_a_run_with_itself_returns_its_order():
    rng = random.Random(7)
    run = {f"q{i}": {f"d{j}": float(rng.randint(0, 5)) for j in range(30)} for i in range(5)}
    fused = RRFFuser(RRFParams()).fuse([run, run], k=30)
    for qid in run:
        assert order(fused[qid]) == order(run[qid])


def shuffled(run, seed):
    rng = random.Random(seed)
    out = {}
    for qid in rng.sample(list(run), len(run)):
        items = list(run[qid].items())
        rng.shuffle(items)
        out[qid] = dict(items)
    return out


@pytest.mark.parametrize("fuser", [RRFFuser(RRFParams(depth=[20, 15])),
                                   CombSumFuser(CombSumParams(normalization="minmax")),
                                   CombSumFuser(CombSumParams(normalization="zscore",
                                                              weights=[0.3, 0.7]))])
def test_input_dict_order_does_not_change_scores(fuser):
    rng = random.Random(3)
    runs = [{f"q{i}": {f"d{j}": rng.random() for j in rng.sample(range(40), 25)}
             for i in range(4)} for _ in range(2)]
    expected = fuser.fuse(runs, k=30)
    for seed in range(3):
        again = fuser.fuse([shuffled(r, seed) for r in runs], k=30)
        assert again == expected  # exact float equality, not approx
        assert all(order(again[q]) == order(expected[q]) for q in expected)


def test_combsum_minmax_hand_computed():
    # A normalised: d1 1, d2 .5, d3 0; B: d3 1, d1 .2, d4 0.
    fused = CombSumFuser(CombSumParams()).fuse([A, B], k=10)["q1"]
    assert fused == pytest.approx({"d1": 1.2, "d2": 0.5, "d3": 1.0, "d4": 0.0}, rel=1e-15)
    assert order(fused) == ["d1", "d3", "d2", "d4"]
    weighted = CombSumFuser(CombSumParams(weights=[1.0, 3.0])).fuse([A, B], k=10)["q1"]
    assert weighted == pytest.approx({"d1": 1.6, "d2": 0.5, "d3": 3.0, "d4": 0.0}, rel=1e-15)


def test_combsum_zscore_hand_computed():
    # A: mean 2, population std sqrt(2/3); B: mean 2, std sqrt(14/3).
    sa, sb = math.sqrt(2 / 3), math.sqrt(14 / 3)
    fused = CombSumFuser(CombSumParams(normalization="zscore")).fuse([A, B], k=10)["q1"]
    assert fused == pytest.approx({"d1": 1 / sa - 1 / sb, "d2": 0.0, "d3": -1 / sa + 3 / sb,
                                   "d4": -2 / sb}, rel=1e-12, abs=1e-15)
    assert fused["d1"] == pytest.approx(0.7618348215053133, rel=1e-12)
    assert order(fused) == ["d1", "d3", "d2", "d4"]


def test_combsum_depth_renormalises_over_the_cut_list():
    fused = CombSumFuser(CombSumParams(depth=[2, 3])).fuse([A, B], k=10)["q1"]
    # A cut to d1 (3 -> 1), d2 (2 -> 0); d3 only from B.
    assert fused == pytest.approx({"d1": 1.2, "d2": 0.0, "d3": 1.0, "d4": 0.0}, rel=1e-15)


def test_combsum_constant_score_lists_do_not_divide_by_zero():
    flat = {"q1": {"d1": 5.0, "d2": 5.0}}
    other = {"q1": {"d2": 1.0, "d3": 0.0}}
    minmax = CombSumFuser(CombSumParams()).fuse([flat, other], k=10)["q1"]
    assert minmax == {"d1": 1.0, "d2": 2.0, "d3": 0.0}
    zscore = CombSumFuser(CombSumParams(normalization="zscore")).fuse([flat, other], k=10)["q1"]
    assert zscore == {"d1": 0.0, "d2": 1.0, "d3": -1.0}
    single = CombSumFuser(CombSumParams()).fuse([{"q1": {"x": 7.0}}], k=10)
    assert single == {"q1": {"x": 1.0}}


def test_queries_missing_from_a_run_are_fused_from_the_others():
    fused = CombSumFuser(CombSumParams()).fuse([A, {"q2": {"d9": 1.0, "d8": 0.0}}], k=10)
    assert fused["q2"] == {"d9": 1.0, "d8": 0.0}
    assert fused["q1"] == pytest.approx({"d1": 1.0, "d2": 0.5, "d3": 0.0})


def test_bad_per_run_lists_and_scores_fail_loudly():
    with pytest.raises(ConfigError, match="weights: 3 values given for 2 runs"):
        RRFFuser(RRFParams(weights=[1, 1, 1])).fuse([A, B], k=10)
    with pytest.raises(ConfigError, match="depth: 1 values given for 2 runs"):
        CombSumFuser(CombSumParams(depth=[5])).fuse([A, B], k=10)
    with pytest.raises(DataError, match="query 'q1'.*'d2'.*nan"):
        CombSumFuser(CombSumParams()).fuse([A, {"q1": {"d2": float("nan")}}], k=10)
    with pytest.raises(ValueError):
        RRFFuser(RRFParams()).fuse([A, B], k=0)
    with pytest.raises(ValueError):
        RRFParams(k=-1)
