"""The published reference results (results/<config>/, written by `make reference`) are what the
code produces. CI affords one re-run, ci-smoke (the session's shared run), which must reproduce
its committed metrics; every other folder is checked for consistency with itself, with its
shipped config and with the README tables generated from it. The full re-run is `make reference`.
"""
import hashlib
import importlib.util
import math
from pathlib import Path

import pytest

from harness import config as config_mod
from harness.core.registry import DETERMINISTIC
from harness.execution.plan import Planner
from harness.regression.tolerances import DEFAULT_TOLERANCES
from harness.storage.results_folder import layout as L, load_results

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("reference", ROOT / "benchmarks" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _script()


@pytest.mark.parametrize("name", reference.CONFIGS)
def test_published_folder_matches_its_config(name):
    folder = ROOT / "results" / name
    assert all((folder / f).is_file() for f in reference.KEPT), f"{folder}: run `make reference`"
    res = load_results(folder)
    assert hashlib.sha256((folder / L.CONFIG).read_bytes()).hexdigest() == \
        res.metadata["config_hash"]
    # Compared as validated configs, so a field the schema gained since does not count.
    published = config_mod.load(folder / L.CONFIG)
    assert config_mod.dump(published) == config_mod.dump(
        config_mod.load(ROOT / "configs" / f"{name}.yaml")), \
        f"configs/{name}.yaml changed since {folder} was published: run `make reference`"
    planned = {p.name: p.tolerance_class for p in Planner(published).pipelines()}
    assert {n: p.tolerance_class for n, p in res.pipelines.items()} == planned
    assert all(p.status == L.OK for p in res.pipelines.values())
    assert set(res.metrics) == set(planned)
    for pipeline, values in res.metrics.items():
        assert set(published.measures) <= set(values), pipeline
        assert res.timing(pipeline, L.TOTAL, L.SINGLE, L.P95_MS) is not None, pipeline


@pytest.mark.parametrize("name", reference.CONFIGS)
def test_published_metrics_are_the_means_of_per_query(name):
    res = load_results(ROOT / "results" / name)
    judged = res.metadata["dataset"]["stats"]["n_judged_queries"]
    for pipeline, values in res.metrics.items():
        for measure, value in values.items():
            per_query = res.per_query[pipeline][measure]
            assert len(per_query) == judged, (pipeline, measure)
            # the runner's own mean: fsum is exactly rounded, so the order of rows is irrelevant
            assert value == math.fsum(per_query.values()) / judged, (pipeline, measure)


def test_readme_tables_are_generated_from_results():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert reference.with_tables(readme, reference.tables()) == readme, \
        "README.md's reproduction tables are stale: run benchmarks/reference.py --table-only"
    assert reference.published() == list(reference.CONFIGS)


def test_with_tables_needs_both_markers():
    with pytest.raises(SystemExit, match="reference:begin"):
        reference.with_tables(f"text\n{reference.END}\n{reference.BEGIN}\n", "table")
    assert reference.with_tables(f"a\n{reference.BEGIN}\nold\n{reference.END}\nb\n", "new") == \
        f"a\n{reference.BEGIN}\nnew\n{reference.END}\nb\n"


@pytest.mark.slow
def test_ci_smoke_rerun_reproduces_the_published_metrics(ci_smoke_results):
    fresh, published = load_results(ci_smoke_results), load_results(ROOT / "results" / "ci-smoke")
    assert fresh.metadata["dataset"]["checksums"] == published.metadata["dataset"]["checksums"]
    assert {n: dict.fromkeys(v) for n, v in fresh.metrics.items()} == \
        {n: dict.fromkeys(v) for n, v in published.metrics.items()}
    moved = []
    for pipeline, values in published.metrics.items():
        cls = published.pipelines[pipeline].tolerance_class
        for measure, expected in values.items():
            actual = fresh.metrics[pipeline][measure]
            # deterministic: bit for bit; model and ANN: within the regression check's tolerance
            ok = actual == expected if cls == DETERMINISTIC else \
                abs(actual - expected) <= DEFAULT_TOLERANCES[cls]
            if not ok:
                moved.append(f"{pipeline} {measure} ({cls}): published {expected!r}, now {actual!r}")
    assert not moved, "results/ci-smoke is not reproduced:\n" + "\n".join(moved)
