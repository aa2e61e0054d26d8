import pytest

from harness.core import registry
from harness.core.errors import PluginError
from harness.core.registry import Params, register


def test_unknown_plugin_lists_choices():
    with pytest.raises(PluginError, match=r"unknown retriever 'nope'; choices: .*bm25.*dense"):
        registry.get("retriever", "nope")


def test_missing_dependency_gives_install_hint():
    @register("retriever", "needs-missing-module", requires=("no_such_module_xyz",),
              install_hint="pip install no-such-package")
    class Needs:
        """A plugin whose engine is not installed."""

    with pytest.raises(PluginError, match=r"missing module\(s\) no_such_module_xyz; install with: "
                                          r"pip install no-such-package"):
        registry.get("retriever", "needs-missing-module")
    listed = {p.name: p for p in registry.plugins("retriever")}
    assert not listed["needs-missing-module"].available()


def test_double_registration_and_bad_kind_are_errors():
    with pytest.raises(ValueError, match="unknown plugin kind"):
        register("tokenizer", "x")
    register("retriever", "dup-test")(type("A", (), {}))
    with pytest.raises(ValueError, match="registered twice"):
        register("retriever", "dup-test")(type("B", (), {}))


def test_params_forbid_unknown_fields():
    class P(Params):
        a: int = 1
    with pytest.raises(Exception, match="Extra inputs are not permitted"):
        P(b=2)


def test_entry_point_plugins_are_loaded(monkeypatch):
    loaded = []

    class EP:
        name, value = "third", "third_party:plugin"

        def load(self):
            loaded.append(self.name)

    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "entry_points", lambda group: [EP()] if group == registry.ENTRY_POINT_GROUP else [])
    registry.plugins()
    assert loaded == ["third"]
