"""Compile a config into a plan: pipelines are chains of nodes, and nodes are shared.

A node's key (`node_key`, the one place keys are made) hashes everything that changes what the
node produces: its stage and plugin, the plugin's fully resolved parameters (defaults filled in,
so writing a default explicitly changes nothing), the fingerprints of the models it loads, its
inputs' keys, the dataset, `k`, and the run settings that change results or timings (seed,
deterministic, device, threads, timing). So `bm25`, `bm25>>cross-encoder@50` and
`rrf(bm25,dense)` share one BM25 node, computed once, and the key doubles as the node's resume
key in the results folder: a saved node is reused only when nothing that produced it changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from harness.core import registry
from harness.config import Config, PipelineSpec, StageSpec
from harness.core.errors import ConfigError
from harness.core.hashing import stable_hash
from harness.filters.spec import normalize as normalize_filter
from harness.storage.results_folder.layout import FIRST_STAGE, FUSION, RERANK

if TYPE_CHECKING:
    from harness.core.context import RunContext

STAGE_KINDS = {FIRST_STAGE: "retriever", FUSION: "fuser", RERANK: "reranker"}


@dataclass(eq=False)
class Node:
    key: str
    stage: str                     # first_stage | fusion | rerank
    kind: str                      # plugin kind: retriever | fuser | reranker
    spec: StageSpec
    inputs: list["Node"] = field(default_factory=list)
    depth: Optional[int] = None    # rerank depth
    plugin_key: str = ""           # the plugin's settings alone: one live instance per value
    filter: Optional[dict] = None  # a first stage's normalised metadata filter
    filter_where: str = ""         # its config path, for errors against the dataset

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.spec.type}" + (f"@{self.depth}" if self.depth else "")

    def chain(self) -> list["Node"]:
        """Every node this one depends on, inputs first, each once."""
        seen: dict[int, Node] = {}

        def visit(node: Node) -> None:
            for inp in node.inputs:
                visit(inp)
            seen.setdefault(id(node), node)

        visit(self)
        return list(seen.values())


@dataclass
class Pipeline:
    name: str
    leaf: Node
    group: str                     # the config entry it comes from: the unit of isolation
    tolerance_class: str           # first stage: its plugin's declared class; else composite
    parent: Optional[str] = None   # for a reranked pipeline, the pipeline it reranks
    sweep: Optional[str] = None    # for an ANN point, its family: `<entry>/<backend>`

    @property
    def stage(self) -> str:
        return self.leaf.stage


def resolved_params(kind: str, spec: StageSpec) -> registry.Params:
    plugin = registry.get(kind, spec.type)
    return plugin.params(**spec.plugin_params())


def run_settings(config: Config, ctx: Optional["RunContext"]) -> dict:
    """The run-wide inputs of every node key (placeholders when only validating)."""
    return {"dataset": ctx.dataset_key if ctx else "", "k": config.k, "seed": config.seed,
            "deterministic": config.deterministic, "device": ctx.device if ctx else config.device,
            "threads": ctx.threads if ctx else config.threads,
            "timing": config.timing.model_dump(mode="json")}


def model_fingerprints(params: registry.Params, fingerprint: bool) -> dict:
    if not fingerprint:
        return {}
    from harness.core.models import model_fingerprint, resolve_model
    return {name: model_fingerprint(resolve_model(name)) for name in params.model_names()}


def node_key(stage: str, spec: StageSpec, params: registry.Params, inputs: list[Node],
             depth: Optional[int], settings: dict, models: dict,
             filter: Optional[dict] = None) -> str:
    # The filter is keyed only when set: unfiltered nodes keep the keys they always had.
    keyed = {"filter": filter} if filter is not None else {}
    return stable_hash({"stage": stage, "type": spec.type, "params": params.resolved(),
                        "models": models, "depth": depth, "inputs": [n.key for n in inputs],
                        **settings, **keyed})


def _is_sweep(index: dict) -> bool:
    return any(isinstance(v, (list, tuple)) for section in ("build", "search")
               for v in (index.get(section) or {}).values())


def _index_points(name: str, stage: StageSpec) -> list[tuple[str, StageSpec, Optional[str]]]:
    """An ANN sweep (`index:` with list-valued build/search parameters, or a list of indexes)
    becomes one first stage per point, named like `dense-minilm/hnsw[M=16,efC=200,ef=64]`, with
    its family (`dense-minilm/hnsw`); build points come first and their search points follow, so
    each index is built once."""
    params = stage.plugin_params()
    index = params.get("index")
    if not isinstance(index, (dict, list)) or (isinstance(index, dict) and not _is_sweep(index)):
        return [(name, stage, None)]
    from harness.ann.sweep import parse_sweep, point_name
    points = []
    for sweep in map(parse_sweep, index if isinstance(index, list) else [index]):
        for build in sweep.build_points:
            for search in sweep.search_points:
                point = StageSpec(type=stage.type, **{**params, "index": {
                    "type": sweep.backend, "build": build, "search": search}})
                points.append((point_name(sweep.backend, {**build, **search}, name), point,
                               f"{name}/{sweep.backend}"))
    return points


def entry_points(spec: PipelineSpec) -> list[tuple[str, StageSpec, Optional[str]]]:
    """(pipeline name, first stage or fusion spec, ANN sweep family) of a config entry: one per
    point of its `sweep:` grid (`bm25s[k1=0.9,b=0.4]`) and of its ANN index grid."""
    if spec.fuse:
        return [(spec.name + label, point, None) for label, point in spec.fuse.points()]
    return [found for label, point in spec.retriever.points()
            for found in _index_points(spec.name + label, point)]


def rerank_points(spec: PipelineSpec, first: str) -> list[tuple[str, StageSpec, int]]:
    """(pipeline name, rerank spec, depth) of each rerank of `first`: every point of the rerank's
    `sweep:` grid at every depth, named like `bm25>>maxsim@100`, `bm25>>ce[batch_size=8]@20`."""
    if not spec.rerank:
        return []
    return [(f"{first}>>{spec.rerank.type}{label}@{depth}", point, depth)
            for label, point in spec.rerank.points() for depth in spec.rerank.depths()]


def _fusion_order(config: Config, points: dict[str, list[str]]) -> list[PipelineSpec]:
    """Config entries ordered so every fusion comes after the entries it fuses; a fusion input
    must name one pipeline (an entry with one first stage, a sweep point, or a reranked pipeline).
    A cycle or an ambiguous input is a ConfigError naming the field."""
    producer: dict[str, str] = {}
    for spec in config.pipelines:
        for first in points[spec.name]:
            for name in [first, *(n for n, _, _ in rerank_points(spec, first))]:
                producer[name] = spec.name
    index = {p.name: i for i, p in enumerate(config.pipelines)}
    deps: dict[str, list[str]] = {}
    for i, spec in enumerate(config.pipelines):
        deps[spec.name] = []
        for j, name in enumerate(spec.fuse.inputs if spec.fuse else []):
            where = f"pipelines[{i}].fuse.inputs[{j}]"
            if name in producer:
                deps[spec.name].append(producer[name])
            elif name in points and len(points[name]) > 1:
                raise ConfigError(f"{where}: {name!r} is a sweep of {len(points[name])} points; "
                                  f"fuse one of them by its name: {', '.join(points[name])}")
            else:
                raise ConfigError(f"{where}: unknown pipeline {name!r}; defined: "
                                  f"{', '.join(producer)}")
    ordered: list[PipelineSpec] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name):] + [name]
            raise ConfigError(f"pipelines[{index[cycle[0]]}].fuse.inputs: fusion cycle "
                              f"{' -> '.join(cycle)}")
        state[name] = "visiting"
        for dep in deps[name]:
            visit(dep, path + [name])
        state[name] = "done"
        ordered.append(config.pipelines[index[name]])

    for spec in config.pipelines:
        visit(spec.name, [])
    return ordered


class Planner:
    """`ctx` supplies the run settings keyed into every node; without it (config validation)
    keys hold placeholders and models are not fingerprinted."""

    def __init__(self, config: Config, ctx: Optional["RunContext"] = None):
        self.config = config
        self.settings = run_settings(config, ctx)
        self.fingerprint = ctx is not None
        self._nodes: dict[str, Node] = {}

    def _node(self, stage: str, spec: StageSpec, inputs: list[Node],
              depth: Optional[int] = None, filter: Optional[dict] = None,
              filter_where: str = "") -> Node:
        kind = STAGE_KINDS[stage]
        params = resolved_params(kind, spec)
        models = model_fingerprints(params, self.fingerprint)
        key = node_key(stage, spec, params, inputs, depth, self.settings, models, filter)
        if key not in self._nodes:
            plugin_key = stable_hash({"kind": kind, "type": spec.type, "models": models,
                                      "params": params.resolved()})
            self._nodes[key] = Node(key, stage, kind, spec, inputs, depth, plugin_key, filter,
                                    filter_where)
        return self._nodes[key]

    def pipelines(self) -> list[Pipeline]:
        points = {spec.name: entry_points(spec) for spec in self.config.pipelines}
        names = {entry: [name for name, _, _ in pts] for entry, pts in points.items()}
        by_name: dict[str, Pipeline] = {}
        out: list[Pipeline] = []
        index = {p.name: i for i, p in enumerate(self.config.pipelines)}
        for spec in _fusion_order(self.config, names):
            firsts = []
            where = f"pipelines[{index[spec.name]}].filter"
            filter = normalize_filter(spec.filter, where) if spec.filter is not None else None
            for name, stage, family in points[spec.name]:
                if spec.retriever:
                    node = self._node(FIRST_STAGE, stage, [], filter=filter, filter_where=where)
                    cls = resolved_params("retriever", stage).tolerance_class(
                        registry.get("retriever", stage.type).tolerance)
                else:
                    inputs = [by_name[n] for n in spec.fuse.inputs]
                    node = self._node(FUSION, stage, [p.leaf for p in inputs])
                    cls = registry.loosest([registry.get("fuser", stage.type).tolerance]
                                           + [p.tolerance_class for p in inputs])
                firsts.append(Pipeline(name, node, spec.name, cls, sweep=family))
            for first in firsts:
                found = [first]
                for name, stage, depth in rerank_points(spec, first.name):
                    node = self._node(RERANK, stage, [first.leaf], depth)
                    declared = registry.get("reranker", stage.type).tolerance
                    found.append(Pipeline(name, node, spec.name,
                                          registry.loosest([declared, first.tolerance_class]),
                                          parent=first.name))
                for p in found:
                    by_name[p.name] = p
                out += found
        position = {p.name: i for i, p in enumerate(self.config.pipelines)}
        return sorted(out, key=lambda p: position[p.group])
