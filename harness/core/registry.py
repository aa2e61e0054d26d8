"""One registry for every plugin kind: built-ins register by decorator, third parties by entry point.

A plugin names the modules it needs; when one is missing the plugin stays listed but asking for it
raises a PluginError with the install hint, so a missing optional dependency never breaks import.
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable, ClassVar, Dict, Optional, Type

from pydantic import BaseModel, ConfigDict

from harness.core.errors import PluginError

KINDS = ("retriever", "ann", "reranker", "fuser")
ENTRY_POINT_GROUP = "retrieval_harness.plugins"

# Packages whose modules hold the built-in plugins: every module in them is imported, as an entry
# point would be, so a new plugin file registers itself (no hand-kept list). Engines load lazily.
BUILTIN_PACKAGES = ("harness.retrievers", "harness.ann", "harness.fusion", "harness.rerankers")

# How a regression check compares a plugin's results (docs/regression.md): exactly (4 decimals),
# within model-inference noise, or within approximate-index noise. Loosest last.
DETERMINISTIC, MODEL, ANN = "deterministic", "model", "ann"
TOLERANCE_CLASSES = (DETERMINISTIC, MODEL, ANN)


def loosest(classes) -> str:
    """The loosest tolerance class among `classes`: a composite is as loose as its loosest part."""
    return max(classes, key=TOLERANCE_CLASSES.index)


class Params(BaseModel):
    """Base for plugin parameters: unknown fields are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Fields naming a model (hub id or folder): checked before any work, so a model that is not
    # available offline fails the config, not a run half an hour in.
    MODEL_FIELDS: ClassVar[tuple[str, ...]] = ()
    # Fields added after results were published: left out of the key while at their default, so
    # the keys (and caches) of existing configs stay what they were.
    KEYED_UNLESS_DEFAULT: ClassVar[tuple[str, ...]] = ()

    def model_names(self) -> list[str]:
        return [getattr(self, f) for f in self.MODEL_FIELDS if getattr(self, f)]

    def _nested(self) -> dict[str, "Params"]:
        return {f: v for f in type(self).model_fields if isinstance(v := getattr(self, f), Params)}

    def resolved(self) -> dict:
        """Every parameter with defaults filled in, as JSON data: what node keys hash, so writing
        a default explicitly changes nothing and changing any value changes the key."""
        data = self.model_dump(mode="json")
        data.update({f: v.resolved() for f, v in self._nested().items()})
        for name in self.KEYED_UNLESS_DEFAULT:
            if getattr(self, name) == type(self).model_fields[name].default:
                del data[name]
        return data

    def tolerance_class(self, declared: str) -> str:
        """The regression-tolerance class of these settings, given the plugin's `declared` one:
        the loosest of it and those of nested settings (an approximate index loosens a retriever)."""
        return loosest([declared] + [v.tolerance_class(declared) for v in self._nested().values()])


@dataclass(frozen=True)
class Plugin:
    kind: str
    name: str
    factory: Callable
    params: Type[Params]
    requires: tuple[str, ...]
    install_hint: str
    description: str
    tolerance: str = MODEL   # regression-tolerance class (DETERMINISTIC, MODEL, ANN)
    exact: bool = False      # ann: returns the exact neighbours (its recall is 1 by construction)

    def missing(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def available(self) -> bool:
        return not self.missing()


_PLUGINS: Dict[tuple[str, str], Plugin] = {}
_loaded = False


def register(kind: str, name: str, params: Type[Params] = Params, requires: tuple[str, ...] = (),
             install_hint: str = "", description: str = "", tolerance: str = MODEL,
             exact: bool = False) -> Callable:
    """Class or function decorator: `factory(params, ctx)` builds the plugin. `tolerance` and
    `exact` are the plugin's declared metadata (see Plugin)."""
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
    if tolerance not in TOLERANCE_CLASSES:
        raise ValueError(f"unknown tolerance class {tolerance!r}; classes: "
                         f"{', '.join(TOLERANCE_CLASSES)}")

    def decorate(factory: Callable) -> Callable:
        key = (kind, name)
        if key in _PLUGINS and _PLUGINS[key].factory is not factory:
            raise ValueError(f"{kind} plugin {name!r} is registered twice")
        doc = description or (factory.__doc__ or "").strip().splitlines()[0:1]
        _PLUGINS[key] = Plugin(kind, name, factory, params, tuple(requires), install_hint,
                               doc if isinstance(doc, str) else "".join(doc), tolerance, exact)
        return factory

    return decorate


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package in BUILTIN_PACKAGES:
        path = importlib.import_module(package).__path__
        for module in pkgutil.iter_modules(path, prefix=f"{package}."):
            importlib.import_module(module.name)
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
