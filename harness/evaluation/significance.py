"""Statistics over per-query scores: confidence intervals, paired tests, Holm correction.

Choices (all seeded, so the same per-query arrays always give the same numbers):
- Confidence interval of a mean: percentile bootstrap over queries (scipy.stats.bootstrap,
  method="percentile"), 95%, 1,000 resamples by default. Percentile rather than BCa because
  BCa fails on degenerate data (a pipeline that scores 0 everywhere) and per-query retrieval scores
  have many such ties; 1,000 resamples fix the interval ends to about ±0.002 nDCG on 300 queries.
- Paired two-sided t-test: scipy.stats.ttest_rel.
- Paired randomisation test: a sign flip of each query's difference (swapping the two systems'
  scores within the query), statistic = mean difference, 5,000 resamples by default; every one
  of the 2**n flips when 2**n is at most that (an exact test). Vectorised here (random bits from
  the seeded bit generator, summed by a matrix product in bounded chunks) with the convention of
  scipy.stats.permutation_test(permutation_type="samples"), which it replaces for speed:
  two-sided p = 2 * min(one-sided p), capped at 1, where a sampled one-sided p counts the observed
  arrangement once, (count + 1) / (resamples + 1). The sign-flip null is symmetric, so that is the
  share of flips whose |mean| is at least the observed |mean| (exactly so when enumerated). The
  random stream is not scipy's: sampled p-values differ from scipy's within Monte-Carlo error.
  The smallest attainable p, 2/5,001, stays below Holm's first threshold 0.05/m for families of
  up to 125 comparisons; more resamples cost time linearly (a few ms per comparison of 1,000
  queries at 5,000).
- Holm–Bonferroni step-down adjustment across a family of p-values.
- Win/tie/loss: per query, |a - b| <= tie_tolerance is a tie.

Where a statistic is undefined it is NaN (shown "n/a") with the reason in `Comparison.note`, never
a crash and never p = 0: fewer than 2 queries (no interval, no test: one query carries no
evidence of spread), or differences that are one constant non-zero value (the t statistic divides
by their zero spread; the randomisation test still has its exact p, e.g. 2/2**n for small n).
Per-query values equal within the tie tolerance count as equal: all ties give p = 1, and
differences that agree within it have zero spread (what remains is floating-point noise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Optional, Sequence

import numpy as np
from scipy import stats

DEFAULT_BOOTSTRAP_RESAMPLES = 1_000
DEFAULT_PERMUTATION_RESAMPLES = 5_000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_TIE_TOLERANCE = 1e-9
DEFAULT_SEED = 0
MIN_QUERIES = 2   # fewest paired queries a test or an interval is defined on
FLIP_CHUNK = 1 << 20   # sign flips (queries x resamples) held in memory at once: 8 MB of float64


def _mean(sample, axis=-1):
    return np.mean(sample, axis=axis)


def bootstrap_ci(values: Sequence[float], n_resamples: int = DEFAULT_BOOTSTRAP_RESAMPLES,
                 confidence: float = DEFAULT_CONFIDENCE,
                 seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of `values` (one value per query).

    NaN for fewer than 2 values: one query's resamples are all that query, and the zero-width
    interval they give would claim a certainty one observation cannot support.
    """
    sample = np.asarray(values, dtype=float)
    if sample.size < MIN_QUERIES:
        return (math.nan, math.nan)
    result = stats.bootstrap((sample,), _mean, n_resamples=n_resamples, vectorized=True,
                             confidence_level=confidence, method="percentile",
                             rng=np.random.default_rng(seed))
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def undefined_note(a: Sequence[float], b: Sequence[float],
                   tie_tolerance: float = DEFAULT_TIE_TOLERANCE) -> Optional[str]:
    """Why the paired tests give no p-value on these samples; None when both are defined.

    Fewer than 2 queries leaves both tests undefined; constant non-zero differences only the
    t-test (the randomisation test still enumerates or samples its sign flips).
    """
    diff = _differences(a, b)
    if diff.size < MIN_QUERIES:
        return (f"n/a: {diff.size} common quer{'y' if diff.size == 1 else 'ies'}; "
                f"a paired test needs at least {MIN_QUERIES}")
    if not _all_ties(diff, tie_tolerance) and np.ptp(diff) <= tie_tolerance:
        return f"t-test n/a: differences have zero variance (every query {diff[0]:+.4g})"
    return None


def paired_t_test(a: Sequence[float], b: Sequence[float],
                  tie_tolerance: float = DEFAULT_TIE_TOLERANCE) -> float:
    """Two-sided p-value of scipy's paired t-test; 1.0 when every query ties; NaN when undefined
    (`undefined_note` says why).

    With every difference 0 the t statistic is 0/0 and scipy returns NaN; identical scores are no
    evidence of a difference, so the p-value is 1.
    """
    x, y = _paired(a, b)
    if undefined_note(x, y, tie_tolerance) is not None:
        return math.nan
    if _all_ties(x - y, tie_tolerance):
        return 1.0
    return float(stats.ttest_rel(x, y).pvalue)


def randomisation_test(a: Sequence[float], b: Sequence[float],
                       n_resamples: int = DEFAULT_PERMUTATION_RESAMPLES,
                       seed: int = DEFAULT_SEED,
                       tie_tolerance: float = DEFAULT_TIE_TOLERANCE) -> float:
    """Two-sided p-value of the paired sign-flip randomisation test on the mean difference;
    1.0 when every query ties; NaN for fewer than 2 queries.

    Flipping the signs of a subset of the differences moves their sum from S to S - 2F, F the
    sum of the flipped ones: the resampled mean is at least the observed one when F <= 0, at most
    when F >= 0. F within the tie tolerance of 0 counts as 0 (the same sum up to the rounding of
    the per-query values, e.g. 0.9 - 0.8 against 0.3 - 0.2), plus the worst-case rounding error
    of an n-term sum, so that summation order never decides a count.
    """
    x, y = _paired(a, b)
    if x.size < MIN_QUERIES:
        return math.nan
    diff = x - y
    if _all_ties(diff, tie_tolerance):
        return 1.0
    diff[np.abs(diff) <= tie_tolerance] = 0.0   # a tied query flips to itself
    n = diff.size
    exact = 2 ** n <= n_resamples
    slack = tie_tolerance + n * np.finfo(float).eps * np.abs(diff).sum()
    at_least = at_most = 0
    for flips in (_all_flips(n) if exact else _random_flips(n, n_resamples, seed)):
        flipped = flips @ diff
        at_least += int(np.count_nonzero(flipped <= slack))
        at_most += int(np.count_nonzero(flipped >= -slack))
    observed = 0 if exact else 1   # a sampled test counts the observed arrangement once
    total = 2 ** n if exact else n_resamples
    return min(1.0, 2 * (min(at_least, at_most) + observed) / (total + observed))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order.

    Sorted ascending, the i-th smallest of m p-values (i from 0) becomes (m - i) * p, made
    non-decreasing by a running maximum and capped at 1. NaN entries are left out of the family
    and stay NaN.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    running_max = 0.0
    for i, index in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running_max = max(running_max, min(1.0, (m - i) * p[index]))
        adjusted[index] = running_max
    return adjusted.tolist()


@dataclass(frozen=True)
class WinTieLoss:
    wins: int    # queries where a scores higher than b by more than the tolerance
    ties: int
    losses: int


def win_tie_loss(a: Sequence[float], b: Sequence[float],
                 tie_tolerance: float = DEFAULT_TIE_TOLERANCE) -> WinTieLoss:
    diff = _differences(a, b)
    ties = int(np.sum(np.abs(diff) <= tie_tolerance))
    wins = int(np.sum(diff > tie_tolerance))
    return WinTieLoss(wins, ties, diff.size - wins - ties)


@dataclass(frozen=True)
class Comparison:
    """System a against baseline b on one measure, paired over the same queries."""

    n_queries: int
    mean_a: float
    mean_b: float
    delta: float               # mean_a - mean_b
    p_t_test: float            # NaN where undefined; `note` says why
    p_randomisation: float
    record: WinTieLoss
    p_t_test_holm: Optional[float] = None
    p_randomisation_holm: Optional[float] = None
    note: Optional[str] = None
    only_a: int = 0            # queries left out of the pairing: a has a value, b has none
    only_b: int = 0


def compare(a: Sequence[float], b: Sequence[float],
            n_resamples: int = DEFAULT_PERMUTATION_RESAMPLES, seed: int = DEFAULT_SEED,
            tie_tolerance: float = DEFAULT_TIE_TOLERANCE) -> Comparison:
    x, y = _paired(a, b)
    return Comparison(x.size, float(x.mean()), float(y.mean()), float((x - y).mean()),
                      paired_t_test(x, y, tie_tolerance),
                      randomisation_test(x, y, n_resamples, seed, tie_tolerance),
                      win_tie_loss(x, y, tie_tolerance), note=undefined_note(x, y, tie_tolerance))


def compare_by_query(a: Mapping[str, float], b: Mapping[str, float],
                     n_resamples: int = DEFAULT_PERMUTATION_RESAMPLES, seed: int = DEFAULT_SEED,
                     tie_tolerance: float = DEFAULT_TIE_TOLERANCE) -> Optional[Comparison]:
    """`compare` over the query ids both have (in b's order), counting those only one has;
    None when they share none."""
    common = [q for q in b if q in a]
    if not common:
        return None
    found = compare([a[q] for q in common], [b[q] for q in common], n_resamples, seed,
                    tie_tolerance)
    return replace(found, only_a=len(a) - len(common), only_b=len(b) - len(common))


def with_holm(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The same comparisons with Holm-adjusted p-values, each test adjusted as one family
    (NaN p-values are left out of the family and stay NaN)."""
    t_adjusted = holm([c.p_t_test for c in comparisons])
    r_adjusted = holm([c.p_randomisation for c in comparisons])
    return [replace(c, p_t_test_holm=t, p_randomisation_holm=r)
            for c, t, r in zip(comparisons, t_adjusted, r_adjusted)]


def _all_ties(diff: np.ndarray, tie_tolerance: float) -> bool:
    return bool(np.all(np.abs(diff) <= tie_tolerance))


def _differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    x, y = _paired(a, b)
    return x - y


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired samples need equal 1-d shapes, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise ValueError("paired samples are empty")
    return x, y


def _all_flips(n: int):
    """Every subset of n queries, as 0/1 rows (bit i of the row number: query i flipped)."""
    rows = max(1, FLIP_CHUNK // n)
    for start in range(0, 2 ** n, rows):
        codes = np.arange(start, min(start + rows, 2 ** n))[:, None]
        yield ((codes >> np.arange(n)) & 1).astype(float)


def _random_flips(n: int, count: int, seed: int):
    """`count` uniformly random subsets of n queries as 0/1 rows, each from its own 64-bit words
    of the seeded PCG64 stream: the rows depend neither on the chunk size nor on the numpy
    version (NumPy keeps raw bit streams stable, not Generator methods)."""
    bits = np.random.PCG64(seed)
    words = -(-n // 64)
    rows = max(1, FLIP_CHUNK // n)
    for start in range(0, count, rows):
        raw = bits.random_raw((min(rows, count - start), words)).astype("<u8", copy=False)
        yield np.unpackbits(raw.view(np.uint8), axis=1, count=n, bitorder="little").astype(float)
