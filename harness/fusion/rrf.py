"""`rrf`: Reciprocal Rank Fusion (Cormack et al., 2009): score(d) = sum_i w_i / (k + rank_i(d))."""
from __future__ import annotations

from typing import Optional, Union

from pydantic import Field, NonNegativeFloat, PositiveInt

from harness.core.context import RunContext
from harness.core.registry import DETERMINISTIC, Params, register
from harness.core.types import Run
from harness.fusion.common import cut_ranking, query_ids, run_settings, top


class RRFParams(Params):
    k: int = Field(60, ge=0, description="the rank constant; 60 as in the paper")
    depth: Optional[Union[PositiveInt, list[PositiveInt]]] = Field(
        None, description="use only each run's top `depth` (one value, or one per run); None = all")
    weights: Optional[list[NonNegativeFloat]] = Field(None, description="one per run; None = 1 each")


@register("fuser", "rrf", params=RRFParams, tolerance=DETERMINISTIC)
class RRFFuser:
    """Reciprocal Rank Fusion of two or more runs; ranks come from (score desc, doc id desc)."""

    def __init__(self, params: RRFParams, ctx: Optional[RunContext] = None):
        self.params = params

    def batch_threads(self) -> int:
        return 1  # pure Python

    def fuse(self, runs: list[Run], k: int) -> Run:
        """The fused top `k` per query. Ranks are 1-based; a document absent from a run's top
        `depth` gets nothing from that run. Each document's terms are added in run order, so the
        scores are bit-for-bit the same whatever the order of the input dicts."""
        depths, weights = run_settings(self.params, runs, k)
        fused: Run = {}
        for qid in query_ids(runs):
            scores: dict[str, float] = {}
            for run, depth, weight in zip(runs, depths, weights):
                for rank, (doc_id, _) in enumerate(cut_ranking(run, qid, depth), start=1):
                    scores[doc_id] = scores.get(doc_id, 0.0) + weight / (self.params.k + rank)
            fused[qid] = top(scores, k)
        return fused
