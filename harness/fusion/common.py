"""What every fuser shares: validated per-run depths and weights, and each run's cut ranking."""
from __future__ import annotations

from typing import Optional, Sequence

from harness.core.errors import ConfigError
from harness.core.types import Run, ranked


def run_settings(params, runs: Sequence[Run], k: int) -> tuple[list, list]:
    """(depth per run, weight per run) from a fuser's `depth`/`weights`, after checking k."""
    if k < 1:
        raise ValueError(f"output k must be >= 1, got {k}")
    return (per_run(params.depth, len(runs), "depth", None),
            per_run(params.weights, len(runs), "weights", 1.0))


def per_run(value, n_runs: int, name: str, default) -> list:
    """Broadcast a scalar (or None -> default) to every run; a list must have one entry per run."""
    if value is None:
        return [default] * n_runs
    if isinstance(value, (list, tuple)):
        if len(value) != n_runs:
            raise ConfigError(f"fusion {name}: {len(value)} values given for {n_runs} runs; "
                              f"give one value, or one per run")
        return list(value)
    return [value] * n_runs


def query_ids(runs: Sequence[Run]) -> list[str]:
    """Every query of any run, first-seen order (a query missing from a run gets nothing from it)."""
    if not runs:
        raise ValueError("fusion needs at least one run")
    seen: dict[str, None] = {}
    for run in runs:
        seen.update(dict.fromkeys(run))
    return list(seen)


def cut_ranking(run: Run, qid: str, depth: Optional[int]) -> list[tuple[str, float]]:
    """The query's ranking in trec_eval order (never dict order), truncated to `depth`."""
    order = ranked(run.get(qid, {}))
    return order if depth is None else order[:depth]


def top(scores: dict[str, float], k: int) -> dict[str, float]:
    return dict(ranked(scores)[:k])
