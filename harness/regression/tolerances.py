"""Tolerance classes: how far a measured value may move before a check fails or reports "improved".

A pipeline's class is the `tolerance_class` the runner records in metadata.json. Deterministic
pipelines must reproduce to 4 decimals; ANN indexes and model inference get small absolute
tolerances (defaults below, overridable per baseline, per pipeline and per measure).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional

from harness.core.errors import DataError
from harness.core.registry import ANN, DETERMINISTIC, MODEL, TOLERANCE_CLASSES as CLASSES
from harness.storage.results_folder import PipelineInfo

DEFAULT_TOLERANCES = {
    DETERMINISTIC: 5e-5,  # "exact to 4 decimals": |actual - expected| <= 0.00005
    MODEL: 0.005,         # model inference: float kernels, thread counts and hardware vary
    ANN: 0.01,            # approximate indexes: build order and graph randomness vary
}

ANY_MEASURE = "*"  # key in a `tolerance:` mapping that applies to every measure of a pipeline


def resolve_classes(pipelines: Mapping[str, PipelineInfo], where: str,
                    names: Optional[Iterable[str]] = None) -> dict[str, str]:
    """Tolerance class of `names` (default: all) of a run's pipelines (metadata.json).

    The runner records each pipeline's class: a first stage's comes from its plugin's declared
    metadata (and its index's exactness), a fusion or rerank takes the loosest of its parts.
    """
    classes: dict[str, str] = {}
    for name in pipelines if names is None else names:
        cls = pipelines[name].tolerance_class
        if cls not in CLASSES:
            raise DataError(f"{where}: pipeline {name!r} has tolerance_class {cls!r}; known: "
                            f"{', '.join(CLASSES)} (a results folder from an older harness: "
                            "re-run it)")
        classes[name] = cls
    return classes


def tolerance_for(measure: str, cls: str, overrides: Optional[Mapping[str, float]],
                  class_defaults: Mapping[str, float]) -> float:
    """Per-measure override, then the pipeline's `*` override, then its class default."""
    overrides = overrides or {}
    if measure in overrides:
        return float(overrides[measure])
    if ANY_MEASURE in overrides:
        return float(overrides[ANY_MEASURE])
    return float(class_defaults[cls])

