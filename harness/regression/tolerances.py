"""Tolerance classes: how far a measured value may move before a check fails or reports "improved".

A pipeline's class follows from the `kind` the runner records in metadata.json. Deterministic
pipelines must reproduce to 4 decimals; ANN indexes and model inference get small absolute
tolerances (defaults below, overridable per baseline, per pipeline and per measure).
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional

from ..errors import DataError

DETERMINISTIC, MODEL, ANN = "deterministic", "model", "ann"
# Loosest last: a composite pipeline (fusion, rerank) takes the loosest class of its parts.
CLASSES = (DETERMINISTIC, MODEL, ANN)

DEFAULT_TOLERANCES = {
    DETERMINISTIC: 5e-5,  # "exact to 4 decimals": |actual - expected| <= 0.00005
    MODEL: 0.005,         # model inference: float kernels, thread counts and hardware vary
    ANN: 0.01,            # approximate indexes: build order and graph randomness vary
}

# metadata.json `pipelines.<name>.kind` -> class, for kinds that do not depend on other pipelines.
KIND_CLASSES = {
    "lucene-bm25": DETERMINISTIC,
    "bm25s": DETERMINISTIC,
    "exact-dense": DETERMINISTIC,
    "ann": ANN,
    "model": MODEL,
}
COMPOSITE_KINDS = ("fusion", "rerank")

ANY_MEASURE = "*"  # key in a `tolerance:` mapping that applies to every measure of a pipeline


def loosest(classes) -> str:
    return max(classes, key=CLASSES.index)


def resolve_classes(pipelines: Mapping[str, Mapping], fuse_inputs: Mapping[str, list],
                    where: str, names: Optional[Iterable[str]] = None) -> dict[str, str]:
    """Tolerance class of `names` (default: all) of metadata.json's `pipelines` mapping.

    A fusion takes the loosest class of its inputs (from the config's `fuse.inputs`; the loosest
    class overall when they are unknown); a rerank is model inference on top of its parent.
    """
    classes: dict[str, str] = {}

    def visit(name: str, stack: tuple) -> str:
        if name in classes:
            return classes[name]
        if name in stack or name not in pipelines:
            return ANN  # a cycle or an unknown input: nothing is known, so be loose
        kind = pipelines[name].get("kind")
        if kind in KIND_CLASSES:
            cls = KIND_CLASSES[kind]
        elif kind == "rerank":
            parent = pipelines[name].get("parent")
            cls = loosest([MODEL] + ([visit(parent, stack + (name,))] if parent else []))
        elif kind == "fusion":
            inputs = fuse_inputs.get(name)
            cls = loosest([visit(i, stack + (name,)) for i in inputs]) if inputs else ANN
        else:
            known = ", ".join([*KIND_CLASSES, *COMPOSITE_KINDS])
            raise DataError(f"{where}: pipeline {name!r} has unknown kind {kind!r}; known: {known}")
        classes[name] = cls
        return cls

    for name in pipelines if names is None else names:
        visit(name, ())
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

