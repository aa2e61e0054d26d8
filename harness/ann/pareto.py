"""Pareto frontiers over sweep points: recall vs single-query q/s, nDCG@10 vs p95 latency."""
from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence, TypeVar

T = TypeVar("T")
Objective = tuple[Callable[[T], float], str]  # (value of a point, "max" or "min")


def pareto_frontier(points: Iterable[T], objectives: Sequence[Objective]) -> list[T]:
    """The points no other point dominates (at least as good on every objective, better on one).

    Points with a NaN objective are left out. The frontier is sorted by the first objective,
    best first. Exact duplicates are both kept: neither dominates the other.
    """
    signs = []
    for _, direction in objectives:
        if direction not in ("max", "min"):
            raise ValueError(f"objective direction must be 'max' or 'min', got {direction!r}")
        signs.append(1.0 if direction == "max" else -1.0)
    scored = []
    for point in points:
        values = tuple(sign * float(fn(point)) for (fn, _), sign in zip(objectives, signs))
        if not any(math.isnan(v) for v in values):
            scored.append((values, point))

    def dominates(a: tuple, b: tuple) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    frontier = [(v, p) for v, p in scored if not any(dominates(w, v) for w, _ in scored)]
    frontier.sort(key=lambda item: item[0][0], reverse=True)
    return [p for _, p in frontier]


def recall_qps_frontier(results: Iterable) -> list:
    """Sweep points (PointResult) on the recall@k / single-query q/s frontier."""
    ok = [r for r in results if r.status == "ok"]
    return pareto_frontier(ok, [(lambda r: r.recall, "max"), (lambda r: r.single_qps, "max")])


def quality_latency_frontier(rows: Iterable[dict], quality: str = "nDCG@10",
                             latency: str = "p95_ms") -> list[dict]:
    """Rows like {"pipeline": ..., "nDCG@10": 0.64, "p95_ms": 0.3} on the quality/latency frontier."""
    return pareto_frontier(list(rows), [(lambda r: r[quality], "max"), (lambda r: r[latency], "min")])
