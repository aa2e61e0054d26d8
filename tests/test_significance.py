import itertools
import math
from fractions import Fraction

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


def _enumerated_p(a, b):
    """Exact two-sided p by brute force in rational arithmetic: the share of the 2**n sign
    vectors whose |sum of signed differences| is at least the observed |sum|."""
    d = [Fraction(x) - Fraction(y) for x, y in zip(a, b)]
    observed = abs(sum(d))
    extreme = sum(abs(sum(s * v for s, v in zip(signs, d))) >= observed
                  for signs in itertools.product((1, -1), repeat=len(d)))
    return extreme / 2 ** len(d)


def _small_cases():
    rng = np.random.default_rng(11)
    for n in range(2, 11):
        b = rng.uniform(0, 1, n)
        yield f"uniform-{n}", b + rng.normal(0.05, 0.2, n), b
        # Dyadic scores (exact in binary): repeated differences, exact cancellations, zeros.
        b = rng.integers(0, 9, n) / 8
        yield f"dyadic-{n}", b + rng.choice([-0.25, 0, 0, 0.25, 0.5], n), b
    # Decimal scores; the 0.4s and 0.1s differ in their last bits, no subset cancels.
    yield ("decimal-8", [0.9, 0.7, 0.8, 0.4, 0.6, 0.5, 0.95, 0.3],
           [0.5, 0.6, 0.7, 0.45, 0.2, 0.5, 0.6, 0.1])
    yield "zero-mean", [0.5, 0.25, 0.75, 0.5], [0.25, 0.5, 0.5, 0.75]
    yield "all-ties", [0.5, 0.25, 0.125], [0.5, 0.25, 0.125]


@pytest.mark.parametrize("a, b", [pytest.param(a, b, id=name) for name, a, b in _small_cases()])
def test_randomisation_test_equals_exact_enumeration(a, b):
    # 2**n <= 5,000 resamples for n <= 12: every sign flip is enumerated, so p is exact.
    assert sig.randomisation_test(a, b) == _enumerated_p(a, b)


def test_randomisation_test_enumerates_exactly_when_2_to_the_n_fits_the_resamples():
    rng = np.random.default_rng(4)
    b = rng.uniform(0, 1, 10)
    a = b + rng.normal(0.1, 0.2, 10)
    assert sig.randomisation_test(a, b, n_resamples=1024) == _enumerated_p(a, b)
    sampled = sig.randomisation_test(a, b, n_resamples=1023)
    assert sampled != _enumerated_p(a, b) and (sampled * 1024 / 2) % 1 == 0   # 2 * (c + 1) / 1024
    assert math.isnan(sig.randomisation_test([0.5], [0.25]))


def test_randomisation_test_counts_decimal_rounding_cancellations_as_ties():
    # d = [0.1 + 1e-17, -0.1 + 3e-18, 0.5]: flipping the first two leaves the mean "unchanged".
    # Exact in decimals: |sum| >= 0.5 for 6 of the 8 sign vectors.
    assert sig.randomisation_test([0.9, 0.3, 0.55], [0.8, 0.4, 0.05]) == 0.75


def _scipy_p(a, b, n_resamples, seed):
    return stats.permutation_test(
        (a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
        vectorized=True, n_resamples=n_resamples, rng=np.random.default_rng(seed)).pvalue


@pytest.mark.parametrize("shift", [-0.025, -0.015, 0.0])   # p about 0.8, 0.3, 0.02
def test_randomisation_test_sampled_agrees_with_scipy_within_monte_carlo_error(shift):
    rng = np.random.default_rng(21)
    b = rng.uniform(0, 1, 300)
    a = b + rng.normal(shift, 0.2, 300)
    ours = sig.randomisation_test(a, b, n_resamples=5000, seed=1)
    theirs = _scipy_p(a, b, 5000, seed=2)
    # Each p is twice a proportion of 5,000 independent draws; 3 standard errors of the
    # difference of the two estimates.
    q = (ours + theirs) / 4
    assert abs(ours - theirs) <= 3 * 2 * math.sqrt(2 * q * (1 - q) / 5000)
    assert 0.005 < theirs < 0.95   # an informative p, not one pinned at an end


def test_randomisation_test_sampled_is_seeded_and_chunk_independent(monkeypatch):
    rng = np.random.default_rng(8)
    b = rng.uniform(0, 1, 70)
    a = b + rng.normal(0.02, 0.2, 70)
    p = sig.randomisation_test(a, b, n_resamples=999, seed=5)
    assert 0.05 < p < 0.95   # away from the ends, where other seeds would give other values
    assert type(p) is float   # reports write repr(p) to CSV
    assert p == sig.randomisation_test(a, b, n_resamples=999, seed=5)
    assert p != sig.randomisation_test(a, b, n_resamples=999, seed=6)
    monkeypatch.setattr(sig, "FLIP_CHUNK", 7 * a.size)   # 7 resamples per chunk
    assert sig.randomisation_test(a, b, n_resamples=999, seed=5) == p
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


def test_constant_differences_sampled_randomisation_p_is_the_smallest_attainable():
    # Only all-plus and all-minus of the 2**30 flips are as extreme; 999 draws miss both.
    a, b = np.full(30, 0.7), np.full(30, 0.2)
    c = sig.compare(a, b, n_resamples=999)
    assert math.isnan(c.p_t_test) and c.p_randomisation == 2 / 1000 == _scipy_p(a, b, 999, 0)


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
