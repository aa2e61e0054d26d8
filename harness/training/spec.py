"""The config's `train:` section and the `model: {train: NAME}` references that use it.

A trained model is named once under `train:` and referenced wherever a model name is accepted:
`dense` / `maxsim` `model` (bi_encoder), `cross-encoder` `model` (cross_encoder), `dpr`
`question_model` / `context_model` (two_tower: each field gets its own tower). Before planning,
every reference is replaced by the trained folder (`with_models`), so node keys hold its cache
path (which is the training key) and its content fingerprint.
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict, Iterator, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

KINDS = ("bi_encoder", "two_tower", "cross_encoder")
# (plugin kind, plugin type, parameter) a trained model of each kind may fill.
USES = {
    "bi_encoder": {("retriever", "dense", "model"), ("reranker", "maxsim", "model")},
    "cross_encoder": {("reranker", "cross-encoder", "model")},
    "two_tower": {("retriever", "dpr", "question_model"), ("retriever", "dpr", "context_model")},
}
TOWERS = {"question_model": "question", "context_model": "context"}
DEFAULT_LOSS = {"bi_encoder": "mnrl", "two_tower": "mnrl", "cross_encoder": "bce"}
LOSSES = {"bi_encoder": ("mnrl",), "two_tower": ("mnrl",), "cross_encoder": ("bce", "lambda")}


class TrainData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Optional[str] = Field(None, description="dataset; default: the config's dataset")
    split: str = "train"


class TrainSpec(BaseModel):
    """One model to train. Defaults are sized for 2 CPU cores (one epoch, short texts)."""

    model_config = ConfigDict(extra="forbid")
    # Left out of the training key at their default, so models cached before they existed stay valid.
    KEYED_UNLESS_DEFAULT: ClassVar[tuple[str, ...]] = ("random_negatives",)
    kind: Literal["bi_encoder", "two_tower", "cross_encoder"]
    base: str = Field(min_length=1, description="hub id or folder the model starts from")
    data: TrainData = Field(default_factory=TrainData)
    loss: Optional[Literal["mnrl", "bce", "lambda"]] = Field(
        None, description="mnrl (bi_encoder, two_tower); bce or lambda (cross_encoder)")
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(32, ge=2)
    lr: float = Field(5e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_length: int = Field(128, ge=8)
    negatives: Literal["none", "bm25", "base"] = Field(
        "none", description="hard negatives mined by BM25 or by the base model (a cross_encoder "
        "needs these or random_negatives)")
    num_negatives: int = Field(1, ge=1, description="hard negatives per training query")
    random_negatives: int = Field(0, ge=0, description="negatives drawn uniformly (seeded) from "
                                  "the training corpus, after the mined ones: a fresh "
                                  "cross-encoder learns nothing from hard negatives alone")
    negatives_skip: int = Field(0, ge=0, description="top results skipped before mining (they "
                                "are often unjudged relevant answers)")
    negatives_depth: int = Field(30, ge=1, description="mine among the miner's top N")
    pos_weight: Optional[float] = Field(None, gt=0, description="BCE weight of a positive; "
                                        "default: negatives per query (mined + random)")
    max_queries: Optional[int] = Field(None, ge=1, description="train on the first N training "
                                       "queries (seeded shuffle); default all")
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self):
        if self.loss is not None and self.loss not in LOSSES[self.kind]:
            raise ValueError(f"loss {self.loss!r} does not apply to kind {self.kind}; allowed: "
                             f"{', '.join(LOSSES[self.kind])}")
        if self.kind == "cross_encoder" and self.negatives == "none" and not self.random_negatives:
            raise ValueError("a cross_encoder learns from negatives: set negatives to bm25 or "
                             "base, or random_negatives")
        if self.kind == "two_tower" and (self.negatives != "none" or self.random_negatives):
            raise ValueError("two_tower trains with in-batch negatives only: negatives must be "
                             "none and random_negatives 0")
        return self

    def keyed(self) -> dict:
        """The spec as JSON data, as the training key hashes it."""
        data = self.model_dump(mode="json")
        for name in self.KEYED_UNLESS_DEFAULT:
            if getattr(self, name) == type(self).model_fields[name].default:
                del data[name]
        return data

    @property
    def negatives_per_query(self) -> int:
        return (self.num_negatives if self.negatives != "none" else 0) + self.random_negatives

    @property
    def resolved_loss(self) -> str:
        return self.loss or DEFAULT_LOSS[self.kind]


def reference(value: Any) -> Optional[str]:
    """NAME when `value` is a `{train: NAME}` reference, else None."""
    if isinstance(value, dict) and set(value) == {"train"} and isinstance(value["train"], str):
        return value["train"]
    return None


def references(config_data: dict) -> Iterator[tuple[str, str, str, str, str]]:
    """(field path, plugin kind, plugin type, parameter, NAME) of every reference in raw config
    data (pipelines' retriever / rerank stages)."""
    for i, pipeline in enumerate(config_data.get("pipelines") or []):
        if not isinstance(pipeline, dict):
            continue
        for field, kind in (("retriever", "retriever"), ("rerank", "reranker")):
            stage = pipeline.get(field)
            if not isinstance(stage, dict):
                continue
            for param, value in stage.items():
                name = reference(value)
                if name is not None:
                    yield (f"pipelines[{i}].{field}.{param}", kind, stage.get("type"), param, name)


def check_references(config_data: dict, specs: Dict[str, TrainSpec]) -> list[str]:
    """Every problem with the references, one line each naming the field."""
    errors = []
    for path, kind, type_, param, name in references(config_data):
        spec = specs.get(name)
        if spec is None:
            errors.append(f"{path}: unknown trained model {name!r}; `train:` defines: "
                          f"{', '.join(specs) or 'none'}")
        elif (kind, type_, param) not in USES[spec.kind]:
            allowed = ", ".join(f"{t}.{p}" for _, t, p in sorted(USES[spec.kind]))
            errors.append(f"{path}: trained model {name!r} is a {spec.kind}; it can be used as "
                          f"{allowed}")
    return errors


def with_models(config_data: dict, folders: Dict[str, Any]) -> dict:
    """A copy of raw config data with every reference replaced by `folders[NAME]`: a folder,
    or for a two_tower `{"question": folder, "context": folder}`."""
    import copy
    data = copy.deepcopy(config_data)
    for pipeline in data.get("pipelines") or []:
        for field in ("retriever", "rerank"):
            stage = pipeline.get(field) if isinstance(pipeline, dict) else None
            for param, value in list((stage or {}).items()):
                name = reference(value)
                if name is not None and name in folders:
                    target = folders[name]
                    stage[param] = target[TOWERS[param]] if isinstance(target, dict) else target
    return data


def used(config_data: dict) -> list[str]:
    """Names of the trained models the pipelines reference, in first-use order."""
    return list(dict.fromkeys(name for *_, name in references(config_data)))
