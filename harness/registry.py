"""One registry for every plugin kind: built-ins register by decorator, third parties by entry point.

A plugin names the modules it needs; when one is missing the plugin stays listed but asking for it
raises a PluginError with the install hint, so a missing optional dependency never breaks import.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable, ClassVar, Dict, Optional, Type

from pydantic import BaseModel, ConfigDict

from .errors import PluginError

KINDS = ("retriever", "ann", "reranker", "fuser")
ENTRY_POINT_GROUP = "retrieval_harness.plugins"

# Modules whose import registers the built-in plugins. Each imports its heavy engine lazily.
BUILTIN_MODULES = (
    "harness.retrievers.bm25_lucene",
    "harness.retrievers.bm25s_retriever",
    "harness.retrievers.dense",
    "harness.retrievers.dpr",
    "harness.retrievers.colbert_plaid",
    "harness.ann",
    "harness.fusion",
    "harness.rerankers.cross_encoder",
    "harness.rerankers.oracle",
    "harness.rerankers.maxsim",
)


class Params(BaseModel):
    """Base for plugin parameters: unknown fields are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Fields naming a model (hub id or folder): checked before any work, so a model that is not
    # available offline fails the config, not a run half an hour in.
    MODEL_FIELDS: ClassVar[tuple[str, ...]] = ()

    def model_names(self) -> list[str]:
        return [getattr(self, f) for f in self.MODEL_FIELDS if getattr(self, f)]


@dataclass(frozen=True)
class Plugin:
    kind: str
    name: str
    factory: Callable
    params: Type[Params]
    requires: tuple[str, ...]
    install_hint: str
    description: str

    def missing(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def available(self) -> bool:
        return not self.missing()


_PLUGINS: Dict[tuple[str, str], Plugin] = {}
_loaded = False


def register(kind: str, name: str, params: Type[Params] = Params, requires: tuple[str, ...] = (),
             install_hint: str = "", description: str = "") -> Callable:
    """Class or function decorator: `factory(params, context)` builds the plugin."""
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")

    def decorate(factory: Callable) -> Callable:
        key = (kind, name)
        if key in _PLUGINS and _PLUGINS[key].factory is not factory:
            raise ValueError(f"{kind} plugin {name!r} is registered twice")
        doc = description or (factory.__doc__ or "").strip().splitlines()[0:1]
        _PLUGINS[key] = Plugin(kind, name, factory, params, tuple(requires), install_hint,
                               doc if isinstance(doc, str) else "".join(doc))
        return factory

    return decorate


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party plugin must not hide the built-ins
            import warnings
            warnings.warn(f"plugin entry point {ep.name!r} ({ep.value}) failed to load: {exc}")


def plugin_modules() -> list[str]:
    """The modules that registered the plugins known in this process: a worker process imports
    them to know the same plugins (third-party ones included)."""
    _load_all()
    return sorted({p.factory.__module__ for p in _PLUGINS.values()})


def plugins(kind: Optional[str] = None) -> list[Plugin]:
    _load_all()
    return sorted((p for p in _PLUGINS.values() if kind is None or p.kind == kind),
                  key=lambda p: (p.kind, p.name))


def get(kind: str, name: str) -> Plugin:
    """The plugin `name` of `kind`, or a PluginError naming the choices or the install hint."""
    _load_all()
    plugin = _PLUGINS.get((kind, name))
    if plugin is None:
        choices = ", ".join(p.name for p in plugins(kind)) or "none"
        raise PluginError(f"unknown {kind} {name!r}; choices: {choices}")
    missing = plugin.missing()
    if missing:
        hint = plugin.install_hint or f"pip install {' '.join(missing)}"
        raise PluginError(f"{kind} {name!r} is unavailable: missing module(s) "
                          f"{', '.join(missing)}; install with: {hint}")
    return plugin
