"""Compile a config into a plan: pipelines are chains of nodes, and nodes are shared.

A node's key is a content hash of its stage spec and its inputs' keys (plus the dataset), so
`bm25`, `bm25>>cross-encoder@50`, `bm25>>cross-encoder@100` and `rrf(bm25,dense)` all point at one
BM25 node: it is computed once. The key is also the node's resume key in the results folder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .config import Config, PipelineSpec, StageSpec
from .hashing import stable_hash


@dataclass(eq=False)
class Node:
    key: str
    stage: str                     # first_stage | fusion | rerank
    kind: str                      # plugin kind: retriever | fuser | reranker
    spec: StageSpec
    inputs: list["Node"] = field(default_factory=list)
    depth: Optional[int] = None    # rerank depth

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
    tolerance_class: str           # how a regression check compares it (see docs/regression.md)
    parent: Optional[str] = None   # for a reranked pipeline, the pipeline it reranks
    sweep: Optional[str] = None    # for an ANN point, its family: `<entry>/<backend>`


def _is_sweep(index: dict) -> bool:
    return any(isinstance(v, (list, tuple)) for section in ("build", "search")
               for v in (index.get(section) or {}).values())


def _kind_of(spec: PipelineSpec, retriever: Optional[StageSpec]) -> str:
    """The regression-tolerance class of a first stage (`retriever`: the point's own spec)."""
    if retriever is None:
        return "fusion"
    params = retriever.plugin_params()
    if retriever.type in ("bm25",):
        return "lucene-bm25"
    if retriever.type == "bm25s":
        return "bm25s"
    index = params.get("index") or {}
    if retriever.type in ("dense", "dpr"):
        exact = isinstance(index, dict) and index.get("type", "flat") == "flat"
        return "exact-dense" if exact else "ann"
    return "model"


class Planner:
    def __init__(self, config: Config, dataset_key: str):
        self.config = config
        self.dataset_key = dataset_key
        self._nodes: dict[str, Node] = {}

    def _node(self, stage: str, kind: str, spec: StageSpec, inputs: list[Node],
              depth: Optional[int] = None) -> Node:
        key = stable_hash({"dataset": self.dataset_key, "k": self.config.k, "stage": stage,
                           "spec": spec.model_dump(exclude={"depth"}), "depth": depth,
                           "inputs": [n.key for n in inputs]})
        if key not in self._nodes:
            self._nodes[key] = Node(key, stage, kind, spec, inputs, depth)
        return self._nodes[key]

    def _points(self, spec: PipelineSpec) -> list[tuple[str, StageSpec]]:
        """An ANN sweep (`index:` with list-valued build/search parameters) becomes one first stage
        per point, named like `dense-minilm/hnsw[M=16,efC=200,ef=64]`; build points come first
        and their search points follow, so each index is built once (see retrievers/vector.py)."""
        params = spec.retriever.plugin_params()
        index = params.get("index")
        if not isinstance(index, (dict, list)) or (isinstance(index, dict) and not _is_sweep(index)):
            return [(spec.name, spec.retriever)]
        from .ann.sweep import parse_sweep, point_name
        points = []
        for sweep in map(parse_sweep, index if isinstance(index, list) else [index]):
            for build in sweep.build_points:
                for search in sweep.search_points:
                    point = StageSpec(type=spec.retriever.type, **{**params, "index": {
                        "type": sweep.backend, "build": build, "search": search}})
                    points.append((point_name(sweep.backend, {**build, **search}, spec.name),
                                   point))
        return points

    def pipelines(self) -> list[Pipeline]:
        by_name: dict[str, Node] = {}
        out: list[Pipeline] = []
        # Fusion inputs may be declared after the fusion pipeline: first stages go first.
        ordered = sorted(self.config.pipelines, key=lambda p: p.fuse is not None)
        for spec in ordered:
            if spec.retriever:
                firsts = [(name, self._node("first_stage", "retriever", stage, []))
                          for name, stage in self._points(spec)]
            else:
                firsts = [(spec.name, self._node("fusion", "fuser", spec.fuse,
                                                 [by_name[name] for name in spec.fuse.inputs]))]
            by_name[spec.name] = firsts[0][1]
            for name, first in firsts:
                kind = _kind_of(spec, first.spec if spec.retriever else None)
                sweep = (f"{spec.name}/{first.spec.plugin_params()['index']['type']}"
                         if name != spec.name else None)
                out.append(Pipeline(name, first, spec.name, kind, sweep=sweep))
                for depth in spec.rerank.depths() if spec.rerank else []:
                    node = self._node("rerank", "reranker", spec.rerank, [first], depth)
                    out.append(Pipeline(f"{name}>>{spec.rerank.type}@{depth}", node, spec.name,
                                        "rerank", parent=name))
        position = {p.name: i for i, p in enumerate(self.config.pipelines)}
        return sorted(out, key=lambda p: position[p.group])
