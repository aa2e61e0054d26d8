"""The report's "Backends against torch fp32" section: each pipeline run through a non-torch
inference backend, against its torch twin in the same results folder.

Twins are found from metadata, not names: the same stages (stage label without its node suffix),
the same model fingerprints and rerank depth, every stage's `backend` torch on one side. Quality:
the paired comparison of the significance table, on the primary measure. Speed: ratios backend /
torch (above 1 = the backend is faster) of encode docs/s (the recorded encode cost of the stage's
documents), single-query p50/p95 and batch q/s (for a cross-encoder rerank: pairs/s, the pairs
being the same).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Optional

from harness.evaluation import significance as sig
from harness.storage.results_folder import Results
from harness.storage.results_folder import layout as L

TORCH = "torch"
_NODE_SUFFIX = re.compile(r"\.\d+$")


@dataclass(frozen=True)
class BackendRow:
    pipeline: str
    torch_pipeline: str
    backends: str                      # the non-torch backends of its stages, e.g. "onnx-int8"
    comparison: Optional[sig.Comparison]  # pipeline against its torch twin, primary measure
    encode_ratio: Optional[float]      # documents/s, backend / torch
    p50_ratio: Optional[float]         # latency torch / backend: > 1 = faster
    p95_ratio: Optional[float]
    batch_ratio: Optional[float]       # batch q/s, backend / torch


def _stages(results: Results, pipeline: str) -> dict[str, dict]:
    stats = results.metadata.get("pipelines", {}).get(pipeline, {}).get("stage_stats") or {}
    return {_NODE_SUFFIX.sub("", label): s for label, s in stats.items()}


def _signature(results: Results, pipeline: str) -> tuple:
    info = results.pipelines[pipeline]
    models = {_NODE_SUFFIX.sub("", label): sorted(m["fingerprint"] for m in fields.values())
              for label, fields in (info.models or {}).items()}
    return (tuple(info.stages), info.rerank_depth, tuple(sorted(
        (label, tuple(fp)) for label, fp in models.items())))


def _backends(results: Results, pipeline: str) -> dict[str, str]:
    return {label: s["backend"] for label, s in _stages(results, pipeline).items()
            if "backend" in s}


def _encode_s(results: Results, pipeline: str) -> Optional[float]:
    """The recorded encode cost of the pipeline's documents (its first stage that encoded)."""
    for s in _stages(results, pipeline).values():
        if "encode_wall_s" in s:
            return s["encode_wall_s"]
    return None


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a and b else None


def backend_rows(results: Results, measure: Optional[str],
                 n_resamples: int = sig.DEFAULT_PERMUTATION_RESAMPLES,
                 seed: int = sig.DEFAULT_SEED) -> list[BackendRow]:
    """A row per pipeline with a non-torch stage that has exactly one torch twin."""
    ok = [p for p in results.pipelines if p in results.metrics]
    torch_only = [p for p in ok if _backends(results, p)
                  and set(_backends(results, p).values()) == {TORCH}]
    pending = []
    for pipeline in ok:
        other = sorted(set(_backends(results, pipeline).values()) - {TORCH})
        twins = [t for t in torch_only if _signature(results, t) == _signature(results, pipeline)]
        if not other or len(twins) != 1:
            continue
        twin = twins[0]
        comparison = None
        if measure is not None:
            per_query = results.per_query
            comparison = sig.compare_by_query(per_query.get(pipeline, {}).get(measure, {}),
                                              per_query.get(twin, {}).get(measure, {}),
                                              n_resamples, seed)

        def timing(p, mode, stat):
            return results.timing(p, L.TOTAL, mode, stat)
        pending.append(BackendRow(
            pipeline, twin, ", ".join(other), comparison,
            _ratio(_encode_s(results, twin), _encode_s(results, pipeline)),
            _ratio(timing(twin, L.SINGLE, L.P50_MS), timing(pipeline, L.SINGLE, L.P50_MS)),
            _ratio(timing(twin, L.SINGLE, L.P95_MS), timing(pipeline, L.SINGLE, L.P95_MS)),
            _ratio(timing(pipeline, L.BATCH, L.QPS), timing(twin, L.BATCH, L.QPS))))
    # Holm-adjusted over this table's comparisons, as the significance table is over its own.
    adjusted = iter(sig.with_holm([r.comparison for r in pending if r.comparison is not None]))
    return [replace(r, comparison=next(adjusted)) if r.comparison is not None else r
            for r in pending]
