"""What every ANN backend shares: parameters split into build and search sets, search-parameter
checks, and the metric/normalisation check that keeps an index consistent with its model."""
from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping

from harness.core.errors import ConfigError
from harness.core.registry import Params

Similarity = Literal["cos", "dot"]


class ANNParams(Params):
    """Backend parameters. Fields named in SEARCH_PARAMS can change after build (a search grid);
    every other field is a build parameter (one index per build point)."""

    SEARCH_PARAMS: ClassVar[frozenset[str]] = frozenset()
    # Short names used in pipeline names, e.g. ef_construction -> efC.
    ALIASES: ClassVar[dict[str, str]] = {}
    # Fields left out of pipeline names (connection settings, not index parameters).
    UNNAMED: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def build_fields(cls) -> list[str]:
        return [f for f in cls.model_fields if f not in cls.SEARCH_PARAMS]

    @classmethod
    def search_fields(cls) -> list[str]:
        return [f for f in cls.model_fields if f in cls.SEARCH_PARAMS]

    def index_similarity(self) -> Similarity:
        """The similarity the index ranks by: "dot" (inner product) or "cos" (normalises itself)."""
        return "dot"

    def check_depth(self, k: int, where: str = "search") -> dict[str, Any]:
        """The search parameters the engine uses when asked for k results, for the record.

        A point must measure what it says: a backend whose engine would search with another
        value than the configured one at depth k refuses the point (ConfigError naming the field
        as `{where}.<field>`); one whose default is defined in terms of k resolves it here.
        Called when the config is validated and again before the index is searched.
        """
        return {f: getattr(self, f) for f in self.search_fields()}


def check_search_params(backend: str, params_cls: type[ANNParams], given: Mapping[str, Any]) -> None:
    """ConfigError naming any parameter that is not a search parameter of `backend`."""
    allowed = params_cls.search_fields()
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(f"ann {backend}: unknown search parameter(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(allowed) or 'none'}")


def check_metric(backend_params: ANNParams, normalized: bool, similarity: Similarity) -> None:
    """Refuse an index whose metric ranks differently from the model's similarity.

    On unit vectors inner product and cosine rank identically, so every metric is fine. On raw
    vectors a cosine-ranking index (angular, cosine space) breaks a dot-product model and an
    inner-product index breaks a cosine model.
    """
    if similarity not in ("cos", "dot"):
        raise ConfigError(f"similarity must be 'cos' or 'dot', got {similarity!r}")
    if normalized:
        return
    index_sim = backend_params.index_similarity()
    if index_sim != similarity:
        backend = type(backend_params).__name__.removesuffix("Params").lower()
        if similarity == "dot":
            fix = "use an inner-product metric (annoy metric: dot, hnsw space: ip)"
        else:
            fix = "normalise the vectors (normalize: true) or use a cosine metric"
        raise ConfigError(f"ann {backend}: the index ranks by {'cosine' if index_sim == 'cos' else 'inner product'}"
                          f" but the model's similarity is {'cosine' if similarity == 'cos' else 'dot product'}"
                          f" on vectors that are not normalised; {fix}")
