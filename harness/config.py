"""Typed benchmark config, validated before any work starts.

Every error names the field path (e.g. `pipelines[2].retriever.k1`) and, where there is a fixed
set, the allowed values. Plugin parameters are validated against the plugin's own model.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.core import registry
from harness.core.errors import ConfigError, HarnessError
from harness.training.spec import TrainSpec


DEFAULT_MEASURES = ["nDCG@10", "RR@10", "R@100", "R@1000"]  # `harness run` and `harness eval`


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SliceSpec(_Strict):
    """A deterministic slice: judged queries with their documents plus some random others."""

    queries: int = Field(ge=1)
    extra_docs: int = Field(0, ge=0)
    seed: int = 0


class DatasetSpec(_Strict):
    """Exactly one source: `name` (with `split`) or an `ir_datasets` id."""

    name: Optional[str] = Field(None, description="a bundled name (scifact, cloud-faq), a BEIR "
                                "name, or a folder")
    ir_datasets: Optional[str] = Field(None, min_length=1, description="an ir_datasets id, e.g. "
                                       "beir/scifact/test (the id names the split)")
    split: str = "test"
    slice: Optional[SliceSpec] = None
    ignore_identical_ids: bool = Field(False, description="drop results whose doc id equals the "
                                       "query id (ArguAna, Quora); never done unless asked")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.name is None) == (self.ir_datasets is None):
            raise ValueError("give exactly one of `name` or `ir_datasets`")
        if self.ir_datasets is not None and self.split != "test":
            raise ValueError(f"`split` ({self.split!r}) is not used with `ir_datasets`: the id names "
                             "the split (e.g. beir/scifact/dev)")
        return self


class StageSpec(BaseModel):
    """`type` names a plugin; every other key is one of that plugin's parameters, except `sweep`:
    a grid over the plugin's parameters (`sweep: {k1: [0.9, 1.2], b: [0.4, 0.75]}`), each
    combination its own pipeline, as PyTerrier's GridScan (an ANN `index:` has its own grid)."""

    model_config = ConfigDict(extra="allow")
    type: str
    sweep: Optional[Dict[str, List[Any]]] = None

    @model_validator(mode="after")
    def _sweep_axes(self):
        for axis, values in (self.sweep or {}).items():
            if not values:
                raise ValueError(f"sweep.{axis}: give at least one value")
            if axis in type(self).model_fields or axis == "index":
                raise ValueError(f"sweep.{axis}: not a sweepable parameter (`index` has its own "
                                 "build/search grid; rerank `depth` takes a list)")
            if axis in (self.model_extra or {}):
                raise ValueError(f"sweep.{axis}: also given as a fixed value; give one of them")
        return self

    def plugin_params(self) -> Dict[str, Any]:
        return dict(self.model_extra or {})

    def points(self) -> List[tuple]:
        """(label, spec) per combination of `sweep`, e.g. (`[k1=0.9,b=0.4]`, a spec with those
        values); one ("", self) without a sweep."""
        if not self.sweep:
            return [("", self)]
        axes = list(self.sweep)
        out = []
        for combo in itertools.product(*(self.sweep[a] for a in axes)):
            values = dict(zip(axes, combo))
            label = "[" + ",".join(f"{a}={v}" for a, v in values.items()) + "]"
            out.append((label, type(self).model_validate(
                {**self.model_dump(exclude={"sweep"}), **values})))
        return out


class RerankSpec(StageSpec):
    depth: Union[int, List[int]] = 100

    def depths(self) -> List[int]:
        return [self.depth] if isinstance(self.depth, int) else list(self.depth)


class FuseSpec(StageSpec):
    inputs: List[str] = Field(min_length=2, description="names of the pipelines to fuse")


class PipelineSpec(_Strict):
    name: str = Field(pattern=r"^[^\s]+$", description="no whitespace (it is a TREC run tag)")
    retriever: Optional[StageSpec] = None
    fuse: Optional[FuseSpec] = None
    rerank: Optional[RerankSpec] = None
    timeout_s: Optional[float] = Field(None, gt=0, description="per config entry (with its "
                                       "rerank depths / sweep points); default: the top-level one")
    memory_cap_mb: Optional[int] = Field(None, ge=1)
    expect: Optional[Dict[str, float]] = None
    tolerance: Optional[Dict[str, float]] = None
    filter: Optional[Dict[str, Any]] = Field(None, description="metadata filter of the first "
                                             "stage (docs/filters.md); part of its node key")

    @model_validator(mode="after")
    def _one_first_stage(self):
        if (self.retriever is None) == (self.fuse is None):
            raise ValueError("give exactly one of `retriever` or `fuse`")
        return self


class TimingSpec(_Strict):
    latency_queries: int = Field(100, ge=0, description="queries timed one at a time (0 = skip)")
    warmup: int = Field(5, ge=0)


class DiversitySpec(_Strict):
    """Intra-list similarity (`ILS@k`) of every pipeline's top k, from this encoder's cached
    document embeddings (docs/filters.md)."""

    model: str = Field("sentence-transformers/all-MiniLM-L6-v2", description="a dense encoder")
    at: List[int] = Field(default_factory=lambda: [10], min_length=1)

    @model_validator(mode="after")
    def _cutoffs(self):
        if any(k < 2 for k in self.at):
            raise ValueError(f"at: cut-offs must be >= 2 (ILS averages pairs), got {self.at}")
        return self


class Config(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    description: str = ""
    dataset: DatasetSpec
    measures: List[str] = Field(default_factory=lambda: list(DEFAULT_MEASURES))
    k: int = Field(1000, ge=1, description="results kept per query by every first stage")
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    threads: Optional[int] = Field(None, ge=1, description="default: all cores")
    seed: int = 0
    deterministic: bool = Field(False, description="build HNSW and Annoy indexes single-threaded "
                                "(their multi-threaded builds depend on scheduling)")
    isolation: Literal["process", "none"] = Field(
        "process", description="process: each config entry runs in a forked worker, so a crash, "
        "timeout or memory blow-up fails only that entry")
    executor: Literal["local", "ray"] = Field(
        "local", description="local: config entries run one after another on this machine; ray: "
        "each entry is a Ray task (docs/distributed.md). Neither changes a node key or a metric")
    ray_address: Optional[str] = Field(None, min_length=1, description="an existing Ray cluster "
                                       "(`auto`, `HOST:PORT`, `ray://HOST:PORT`); default: a local "
                                       "Ray started for the run")
    timeout_s: Optional[float] = Field(None, gt=0)
    memory_cap_mb: Optional[int] = Field(None, ge=1)
    timing: TimingSpec = Field(default_factory=TimingSpec)
    diversity: Optional[DiversitySpec] = None
    train: Dict[str, TrainSpec] = Field(default_factory=dict, description="models trained "
                                        "before planning, used as `model: {train: NAME}`")
    baseline: Optional[str] = Field(None, min_length=1, description="the pipeline the report "
                                    "compares every other against (default: the first)")
    pipelines: List[PipelineSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _executor(self):
        if self.executor == "ray" and self.isolation == "none":
            raise ValueError("executor: ray runs each config entry as a task in its own worker; "
                             "it needs isolation: process (the default)")
        if self.ray_address is not None and self.executor != "ray":
            raise ValueError("ray_address is only used with executor: ray")
        return self

    @model_validator(mode="after")
    def _unique_names(self):
        names = [p.name for p in self.pipelines]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pipeline names must be unique; repeated: {', '.join(dupes)}")
        return self


def _loc(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _format(exc: ValidationError, prefix: str = "") -> List[str]:
    lines = []
    for err in exc.errors():
        path = _loc(err["loc"])
        path = f"{prefix}.{path}" if prefix and path else (prefix or path)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"{path or '<root>'}: {msg}")
    return lines


def _check_plugin(kind: str, spec: StageSpec, path: str, errors: List[str],
                  k: Optional[int] = None) -> None:
    try:
        plugin = registry.get(kind, spec.type)
    except HarnessError as exc:
        errors.append(f"{path}.type: {exc}")
        return
    allowed = ", ".join(plugin.params.model_fields) or "none"
    params = spec.plugin_params()
    index = params.get("index")
    if isinstance(index, (dict, list)):  # ANN backend specs, possibly build x search sweeps
        from harness.ann.sweep import parse_sweep
        specs = index if isinstance(index, list) else [index]
        try:
            sweeps = [parse_sweep(one, where=f"{path}.index" + (f"[{i}]" if isinstance(index, list) else ""),
                                  k=k)
                      for i, one in enumerate(specs)]
        except HarnessError as exc:
            errors.append(str(exc))
            return
        params = {**params, "index": {"type": sweeps[0].backend, "build": sweeps[0].build_points[0],
                                      "search": sweeps[0].search_points[0]}}
    try:
        validated = plugin.params(**params)
    except ValidationError as exc:
        errors.extend(f"{line} (parameters of {kind} {spec.type!r}: {allowed})"
                      for line in _format(exc, path))
        return
    from harness.core.models import check_available
    for field in validated.MODEL_FIELDS:
        name = getattr(validated, field)
        try:
            if name:
                check_available(name)
        except HarnessError as exc:
            errors.append(f"{path}.{field}: {exc}")


def _filter_errors(p: PipelineSpec, where: str) -> List[str]:
    """The filter's syntax, and every first stage of the entry able to apply it."""
    from harness.filters.spec import normalize
    from harness.filters.support import filter_mode
    if p.fuse is not None:
        return [f"{where}: a fusion takes no filter; filter the pipelines it fuses"]
    try:
        normalize(p.filter, where)
        from harness.execution.plan import entry_points
        for _, point, _ in entry_points(p):
            filter_mode(point, where)
    except HarnessError as exc:
        return [str(exc)]
    return []


def validate(data: Any, source: str = "<config>") -> Config:
    """Validate raw config data; raise one ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config is a YAML mapping, got {type(data).__name__}")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(_format(exc))) from None
    from harness.training.spec import check_references, with_models
    errors: List[str] = check_references(data, config.train)
    from harness.core.models import check_available
    for name, spec in config.train.items():
        try:
            check_available(spec.base)
        except HarnessError as exc:
            errors.append(f"train.{name}.base: {exc}")
    if errors:
        raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(errors))
    # Plugin parameters and the plan are checked with each trained model standing in as its base.
    checked = config if not config.train else Config.model_validate(with_models(
        data, {name: {"question": s.base, "context": s.base} if s.kind == "two_tower" else s.base
               for name, s in config.train.items()}))
    from harness.evaluation.metrics import parse_measures
    try:
        measures = parse_measures(config.measures)
    except HarnessError as exc:
        errors.append(f"measures: {exc}")
        measures = []
    for i, m in enumerate(measures):
        cutoff = m.params.get("cutoff")
        if cutoff is not None and cutoff > config.k:
            errors.append(f"measures[{i}]: {m} needs {cutoff} results per query but k={config.k} "
                          f"keeps {config.k}; raise k to {cutoff} or lower the cut-off")
    if config.diversity:
        deep = [k for k in config.diversity.at if k > config.k]
        if deep:
            errors.append(f"diversity.at: {deep} > k={config.k}; lower the cut-off or raise k")
        try:
            from harness.core.models import check_available
            check_available(config.diversity.model)
        except HarnessError as exc:
            errors.append(f"diversity.model: {exc}")
    for i, p in enumerate(config.pipelines):
        if p.filter is not None:
            errors += _filter_errors(p, f"pipelines[{i}].filter")
    for i, p in enumerate(checked.pipelines):
        for kind, field, spec in (("retriever", "retriever", p.retriever), ("fuser", "fuse", p.fuse),
                                  ("reranker", "rerank", p.rerank)):
            for label, point in spec.points() if spec else []:
                found: List[str] = []
                _check_plugin(kind, point, f"pipelines[{i}].{field}", found, config.k)
                errors += [f"{e} (sweep point {label})" if label else e for e in found]
        if p.rerank:
            deep = [d for d in p.rerank.depths() if d > config.k]
            if deep:
                errors.append(f"pipelines[{i}].rerank.depth: {deep} > k={config.k}: a first stage "
                              f"keeps only k results, so the rerank would be labelled @{deep[0]} "
                              f"and rerank {config.k}; lower the depth or raise k")
    if not errors:  # fusion inputs name pipelines of the plan (sweep points, reranked ones)
        from harness.execution.plan import Planner
        try:
            names = [p.name for p in Planner(checked).pipelines()]
        except HarnessError as exc:
            errors.append(str(exc))
        else:
            if config.baseline is not None and config.baseline not in names:
                errors.append(f"baseline: {config.baseline!r} is not a pipeline of this config "
                              f"(pipelines: {', '.join(names)})")
    if errors:
        raise ConfigError(f"{source}: invalid config:\n  " + "\n  ".join(errors))
    return config


def dump(config: Config) -> str:
    """The config as saved with results: every field, explicit nulls included (a plugin parameter
    set to null must stay null), so loading this text reproduces the run. Its sha256 is the
    run's `config_hash`."""
    # An empty `train:` and an unset `baseline` are left out: configs without them keep their hash.
    unset = {field for field, value in (("train", config.train), ("baseline", config.baseline))
             if not value}
    return yaml.safe_dump(config.model_dump(mode="json", exclude=unset or None), sort_keys=False)


def load(path: Union[str, Path]) -> Config:
    return validate(read(path), str(path))


def read(path: Union[str, Path]) -> Any:
    """A config file's YAML, not yet validated (`harness.run` applies overrides to it first)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: YAML syntax error: {getattr(exc, 'problem', exc)}") from None
