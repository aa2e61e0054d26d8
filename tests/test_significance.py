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
    assert sig.bootstrap_ci([0.4]) == (0.4, 0.4)
    assert all(math.isnan(v) for v in sig.bootstrap_ci([]))


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
