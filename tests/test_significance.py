import itertools
import math

import numpy as np
import pytest
from scipy import stats

from harness.evaluation import significance as sig


@pytest.fixture
def pair():
    rng = np.random.default_rng(7)
    b = rng.uniform(0, 1, 60)
    a = np.clip(b + rng.normal(0.05, 0.1, 60), 0, 1)
    return a, b


def test_bootstrap_ci_equals_numpy_percentile_bootstrap(pair):
    a, _ = pair
    low, high = sig.bootstrap_ci(a, n_resamples=500, seed=3)
    # The same resamples by hand: 500 rows of n indices drawn from the same seeded generator.
    idx = np.random.default_rng(3).integers(0, a.size, (500, a.size))
    means = a[idx].mean(axis=1)
    assert low == pytest.approx(np.quantile(means, 0.025), abs=1e-12)
    assert high == pytest.approx(np.quantile(means, 0.975), abs=1e-12)
    assert low < a.mean() < high


def test_bootstrap_ci_is_seeded_and_degenerate_safe(pair):
    a, _ = pair
    assert sig.bootstrap_ci(a, seed=1) == sig.bootstrap_ci(a, seed=1)
    assert sig.bootstrap_ci(a, seed=1) != sig.bootstrap_ci(a, seed=2)
    assert sig.bootstrap_ci(np.zeros(30)) == (0.0, 0.0)
    assert all(math.isnan(v) for v in sig.bootstrap_ci([]))


def test_bootstrap_ci_of_one_query_is_undefined_not_a_point():
    # One query: every resample is that query; a zero-width interval would claim certainty.
    assert all(math.isnan(v) for v in sig.bootstrap_ci([0.4]))
    low, high = sig.bootstrap_ci([0.1, 0.5], n_resamples=200)
    assert 0.1 <= low < high <= 0.5


def test_t_test_equals_scipy_and_hand_formula(pair):
    a, b = pair
    p = sig.paired_t_test(a, b)
    assert p == stats.ttest_rel(a, b).pvalue
    d = a - b
    t = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    assert p == pytest.approx(2 * stats.t.sf(abs(t), d.size - 1), rel=1e-10)
    assert sig.paired_t_test(a, a) == 1.0


def test_randomisation_test_equals_scipy_and_exact_enumeration():
    # 8 queries: 2**8 sign flips < n_resamples, so scipy enumerates them all (an exact test).
    a = np.array([0.9, 0.7, 0.8, 0.4, 0.6, 0.5, 0.95, 0.3])
    b = np.array([0.5, 0.6, 0.7, 0.45, 0.2, 0.5, 0.6, 0.1])
    d = a - b
    observed = d.mean()
    flips = np.array(list(itertools.product([1, -1], repeat=d.size)))
    null = (flips * d).mean(axis=1)
    exact = np.mean(np.abs(null) >= abs(observed) - 1e-12)
    assert sig.randomisation_test(a, b) == pytest.approx(exact, abs=1e-12)


def test_randomisation_test_sampled_is_seeded_scipy(pair):
    a, b = pair
    expected = stats.permutation_test(
        (a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
        vectorized=True, n_resamples=999, rng=np.random.default_rng(5)).pvalue
    assert sig.randomisation_test(a, b, n_resamples=999, seed=5) == expected
    assert sig.randomisation_test(a, a) == 1.0


def test_holm_hand_made_case():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    assert sig.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1, NaN left out of the family (m = 2 here)
    adjusted = sig.holm([0.6, float("nan"), 0.02])
    assert adjusted[0] == 0.6 and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    assert sig.holm([0.7, 0.6]) == [1.0, 1.0]
    assert sig.holm([]) == []


def test_win_tie_loss_with_tolerance():
    a = [0.5, 0.5, 0.7, 0.1, 0.3 + 1e-12]
    b = [0.4, 0.5, 0.9, 0.2, 0.3]
    assert sig.win_tie_loss(a, b) == sig.WinTieLoss(wins=1, ties=2, losses=2)
    assert sig.win_tie_loss(a, b, tie_tolerance=0.15) == sig.WinTieLoss(0, 4, 1)


def test_compare_and_holm_family(pair):
    a, b = pair
    c = sig.compare(a, b, n_resamples=999, seed=0)
    assert c.n_queries == 60 and c.delta == pytest.approx(a.mean() - b.mean())
    assert c.record.wins + c.record.ties + c.record.losses == 60
    adjusted = sig.with_holm([c, sig.compare(b, b)])
    assert adjusted[0].p_t_test_holm == pytest.approx(min(1.0, 2 * c.p_t_test))
    assert adjusted[1].p_randomisation_holm == 1.0


def test_unpaired_shapes_are_rejected():
    with pytest.raises(ValueError, match="equal 1-d shapes"):
        sig.compare([0.1, 0.2], [0.1])


def test_one_common_query_gives_nan_with_a_reason_not_a_crash():
    for a, b in (([0.5], [0.3]), ([0.5], [0.5])):
        c = sig.compare(a, b)   # scipy raised ValueError on one observation
        assert c.n_queries == 1 and c.delta == pytest.approx(a[0] - b[0])
        assert math.isnan(c.p_t_test) and math.isnan(c.p_randomisation)
        assert c.note == "n/a: 1 common query; a paired test needs at least 2"
    assert math.isnan(sig.paired_t_test([0.5], [0.3]))
    assert math.isnan(sig.randomisation_test([0.5], [0.3]))


@pytest.mark.parametrize("a, b", [
    ([0.3] * 4, [0.2] * 4),                      # t = 0.1 / 0 -> scipy gave p = 0.0
    ([0.6, 0.7, 0.8, 0.9], [0.5, 0.6, 0.7, 0.8]),  # +0.1 up to rounding -> scipy gave p ~ 1e-31
])
def test_constant_nonzero_differences_leave_only_the_t_test_undefined(a, b):
    c = sig.compare(a, b)
    assert math.isnan(c.p_t_test)
    assert c.note == "t-test n/a: differences have zero variance (every query +0.1)"
    # The sign-flip test is still defined: 2 of the 2**4 flips are as extreme (all + or all -).
    assert c.p_randomisation == pytest.approx(2 / 16)
    assert c.record == sig.WinTieLoss(4, 0, 0)


def test_constant_differences_sampled_randomisation_p_is_seeded_scipy():
    a, b = np.full(30, 0.7), np.full(30, 0.2)
    expected = stats.permutation_test(
        (a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
        vectorized=True, n_resamples=999, rng=np.random.default_rng(0)).pvalue
    c = sig.compare(a, b, n_resamples=999)
    assert math.isnan(c.p_t_test) and c.p_randomisation == expected > 0


def test_differences_within_the_tie_tolerance_are_ties():
    a = np.array([0.5, 0.25, 0.75]) + 1e-12   # floating-point noise, not an effect
    b = np.array([0.5, 0.25, 0.75])
    c = sig.compare(a, b)
    assert (c.p_t_test, c.p_randomisation, c.note) == (1.0, 1.0, None)


def test_holm_leaves_undefined_tests_out_of_the_family(pair):
    a, b = pair
    defined = sig.compare(a, b, n_resamples=999)
    one_query = sig.compare([0.5], [0.3])
    constant = sig.compare([0.3] * 4, [0.2] * 4)
    adjusted = sig.with_holm([defined, one_query, constant])
    # t-test family: only `defined` has a p-value, so m = 1 and it is unchanged.
    assert adjusted[0].p_t_test_holm == defined.p_t_test
    assert math.isnan(adjusted[1].p_t_test_holm) and math.isnan(adjusted[2].p_t_test_holm)
    # randomisation family: m = 2 (`one_query` is out).
    assert math.isnan(adjusted[1].p_randomisation_holm)
    assert adjusted[2].p_randomisation_holm == pytest.approx(
        sig.holm([defined.p_randomisation, constant.p_randomisation])[1])
    assert adjusted[2].note == constant.note


def test_compare_by_query_pairs_by_id_and_counts_the_rest():
    a = {"q1": 0.9, "q2": 0.5, "q3": 0.4}
    b = {"q4": 0.0, "q3": 0.1, "q2": 0.2}
    c = sig.compare_by_query(a, b, n_resamples=99)
    assert (c.n_queries, c.only_a, c.only_b) == (2, 1, 1)
    assert (c.mean_a, c.mean_b) == (pytest.approx(0.45), pytest.approx(0.15))
    assert sig.compare_by_query({"q1": 0.1}, {"q2": 0.1}) is None
