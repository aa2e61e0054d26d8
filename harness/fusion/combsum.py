"""`combsum`: weighted sum of per-query normalised scores (CombSUM, Fox & Shaw, 1994).

Each run's scores are normalised per query over the documents it contributes (its top `depth`):
- `minmax`: (s - min) / (max - min), in [0, 1]; a list whose scores are all equal maps to 1.0
  (every document is as good as the run's best), so there is no division by zero;
- `zscore`: (s - mean) / std (population std); a constant list maps to 0.0.
A document missing from a run contributes 0 from it. With `minmax` that ranks it with the run's
worst retrieved document; with `zscore` 0 is the run's mean, so absence counts as average.
"""
from __future__ import annotations

import math
from typing import Literal, Optional, Union

from pydantic import Field, NonNegativeFloat, PositiveInt

from harness.core.context import RunContext
from harness.core.errors import DataError
from harness.core.registry import DETERMINISTIC, Params, register
from harness.core.types import Run
from harness.fusion.common import cut_ranking, query_ids, run_settings, top


class CombSumParams(Params):
    normalization: Literal["minmax", "zscore"] = "minmax"
    depth: Optional[Union[PositiveInt, list[PositiveInt]]] = Field(
        None, description="use only each run's top `depth` (one value, or one per run); None = all")
    weights: Optional[list[NonNegativeFloat]] = Field(None, description="one per run; None = 1 each")


def normalise(scores: list[float], method: str) -> list[float]:
    """Normalised scores in the same order. fsum makes mean and std independent of that order."""
    if not scores:
        return []
    if method == "minmax":
        lo, hi = min(scores), max(scores)
        return [1.0] * len(scores) if hi == lo else [(s - lo) / (hi - lo) for s in scores]
    mean = math.fsum(scores) / len(scores)
    std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / len(scores))
    return [0.0] * len(scores) if std == 0.0 else [(s - mean) / std for s in scores]


@register("fuser", "combsum", params=CombSumParams, tolerance=DETERMINISTIC)
class CombSumFuser:
    """Weighted CombSUM over min-max or z-score normalised scores."""

    def __init__(self, params: CombSumParams, ctx: Optional[RunContext] = None):
        self.params = params

    def batch_threads(self) -> int:
        return 1  # pure Python

    def fuse(self, runs: list[Run], k: int) -> Run:
        """The fused top `k` per query; terms are added in run order (deterministic scores)."""
        depths, weights = run_settings(self.params, runs, k)
        fused: Run = {}
        for qid in query_ids(runs):
            scores: dict[str, float] = {}
            for i, (run, depth, weight) in enumerate(zip(runs, depths, weights)):
                ranking = cut_ranking(run, qid, depth)
                for doc_id, score in ranking:
                    if not math.isfinite(score):
                        raise DataError(f"fusion input run {i}, query {qid!r}: doc {doc_id!r} has "
                                        f"score {score!r}; scores must be finite")
                values = normalise([s for _, s in ranking], self.params.normalization)
                for (doc_id, _), value in zip(ranking, values):
                    scores[doc_id] = scores.get(doc_id, 0.0) + weight * value
            fused[qid] = top(scores, k)
        return fused
