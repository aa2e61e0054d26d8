"""The Python API: run a benchmark and explore its results as pandas DataFrames.

    import harness
    results = harness.run("configs/quickstart.yaml", out="results/qs", max_queries=50)
    results.metrics                      # pipeline, measure, value: metrics.csv
    results.compare(baseline="bm25")     # Δ, CI, p-values (Holm), W/T/L: the report's numbers
    results.report("reports/qs")         # index.html, summary.csv, summary.md
    harness.load("results/qs")           # the same Results from disk

`harness run` (the CLI) is a thin layer over `run`. A `Results` reads its folder through
`harness.storage.results_folder.load_results`, the strict reader behind `harness report` and
`harness check`, and its statistics come from the report's own code, so a notebook, the report
and the check never disagree. Heavy modules (pandas, the runner, plugins) are imported on first
use: `import harness` stays cheap.
"""
from __future__ import annotations

import html
import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Union

from harness.core.errors import ConfigError, HarnessError

if TYPE_CHECKING:
    import pandas as pd

    from harness.config import Config
    from harness.execution.benchmark import BenchmarkOutcome
    from harness.regression.check import Report
    from harness.storage.results_folder import PipelineInfo
    from harness.storage.results_folder import Results as Folder

PathLike = Union[str, "os.PathLike[str]"]
ConfigLike = Union[PathLike, Mapping[str, Any], "Config"]

def offline_defaults() -> None:
    """No model hub traffic unless the user opts in by setting these variables to 0 (they act
    only if set before transformers / huggingface_hub are imported)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run(config: ConfigLike, out: Optional[PathLike] = None, *, max_queries: Optional[int] = None,
        force: bool = False, cache_dir: Optional[PathLike] = None,
        plugins: Union[str, Iterable[str]] = (), progress: bool = True,
        **overrides: Any) -> Results:
    """Run a benchmark, write its results folder and return it as `Results`.

    config: a YAML path, a mapping (the YAML's content) or a `harness.config.Config`.
    out: the results folder (default `results/<name>-<timestamp>/`); an existing one is resumed:
        finished nodes whose saved results verify are not recomputed (docs/robustness.md).
    max_queries: evaluate only the first N judged queries. force: recompute every node.
    cache_dir: embedding/index cache (default $HARNESS_CACHE_DIR or ./.cache/harness).
    plugins: modules to import first (they register plugins): a name or several.
    progress: show progress bars.
    overrides: top-level config fields replacing the config's own (`k=100`,
        `isolation="none"`, `measures=[...]`); the result is validated exactly like a YAML file,
        and the folder's config.yaml records the config as run.

    Raises ConfigError (naming the field) before any work when the config is invalid, and other
    HarnessErrors for bad input; a pipeline that fails is recorded in the folder
    (`Results.failed`), not raised. Like the CLI, it works offline unless HF_HUB_OFFLINE /
    TRANSFORMERS_OFFLINE are set (to 0) before the first model library import.
    """
    offline_defaults()
    if max_queries is not None and (isinstance(max_queries, bool)
                                    or not isinstance(max_queries, int) or max_queries < 1):
        raise ConfigError(f"max_queries: expected an integer >= 1, got {max_queries!r}")
    for module in [plugins] if isinstance(plugins, str) else plugins:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise HarnessError(f"plugin module {module}: cannot import: {exc}") from None
    validated = resolve_config(config, **overrides)
    from harness.execution.benchmark import run_benchmark
    outcome = run_benchmark(validated, Path(out) if out is not None else None, max_queries, force,
                            Path(cache_dir) if cache_dir is not None else None, progress)
    results = load(outcome.out_dir)
    results.outcome = outcome
    return results


def resolve_config(config: ConfigLike, **overrides: Any) -> Config:
    """The validated config `run` would use: `config` with `overrides` replacing top-level
    fields, through `harness.config.validate` (a Config is validated again from its dump, as its
    config.yaml would be: plugin parameters and measures are checked there, not by pydantic)."""
    from harness import config as config_mod
    if isinstance(config, config_mod.Config):
        data, source = config.model_dump(mode="json"), "<Config>"
    elif isinstance(config, Mapping):
        data, source = dict(config), "<config>"
    elif isinstance(config, (str, os.PathLike)):
        data, source = config_mod.read(config), str(config)
    else:
        raise ConfigError(f"config: expected a YAML path, a mapping or a harness.config.Config, "
                          f"got {type(config).__name__}")
    if overrides:
        if isinstance(data, dict):  # anything else is refused by validate, naming what it is
            data = {**data, **overrides}
        source += f" with overrides {', '.join(overrides)}"
    return config_mod.validate(data, source)


def load(results_dir: PathLike) -> Results:
    """A results folder written by `harness run` / `harness.run`, read strictly: a malformed file
    raises DataError naming file:line (docs/results.md)."""
    from harness.storage.results_folder import load_results
    return Results(load_results(results_dir))


class Results:
    """One results folder. Tables are tidy DataFrames built on each access (changing one does not
    change the next); `.folder` is the underlying reader for everything else (metadata, config,
    qrels, queries)."""

    def __init__(self, folder: Folder, outcome: Optional[BenchmarkOutcome] = None):
        self.folder = folder
        # The run's in-memory outcome when `harness.run` produced this object (the CLI prints
        # its table from it); None after `harness.load`.
        self.outcome = outcome

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def run_name(self) -> str:
        return self.folder.run_name

    @property
    def metadata(self) -> dict:
        return self.folder.metadata

    @property
    def pipelines(self) -> dict[str, PipelineInfo]:
        """Every pipeline of the run (failed ones included), in metadata.json order."""
        return self.folder.pipelines

    @property
    def failed(self) -> dict[str, Optional[str]]:
        """Pipelines that failed, with the reason metadata.json records."""
        from harness.storage.results_folder.layout import FAILED
        return {name: info.reason for name, info in self.pipelines.items()
                if info.status == FAILED}

    @property
    def measures(self) -> list[str]:
        return self.folder.measures

    @property
    def metrics(self) -> pd.DataFrame:
        """metrics.csv: `pipeline, measure, value`, the mean over every judged query."""
        import pandas as pd
        rows = [(p, m, v) for p, by_measure in self.folder.metrics.items()
                for m, v in by_measure.items()]
        return pd.DataFrame(rows, columns=["pipeline", "measure", "value"])

    @property
    def per_query(self) -> pd.DataFrame:
        """per_query.csv: `pipeline, qid, measure, value`, one row per judged query (qid a str)."""
        import pandas as pd
        rows = [(p, qid, m, v) for p, by_measure in self.folder.per_query.items()
                for m, by_qid in by_measure.items() for qid, v in by_qid.items()]
        return pd.DataFrame(rows, columns=["pipeline", "qid", "measure", "value"])

    @property
    def timings(self) -> pd.DataFrame:
        """timings.csv: `pipeline, stage, mode, stat, value` (docs/results.md names them)."""
        import pandas as pd
        return pd.DataFrame([(r.pipeline, r.stage, r.mode, r.stat, r.value)
                             for r in self.folder.timings],
                            columns=["pipeline", "stage", "mode", "stat", "value"])

    @property
    def runs(self) -> Runs:
        """pipeline -> its ranked run as a DataFrame (`qid, docid, rank, score`), read from runs/
        when asked for."""
        return Runs(self.folder)

    def leaderboard(self) -> pd.DataFrame:
        """Mean of each measure (columns) by pipeline (rows), from metrics.csv, unrounded."""
        import pandas as pd
        frame = pd.DataFrame.from_dict(self.folder.metrics, orient="index",
                                       columns=self.measures or None)
        frame.index.name = "pipeline"
        return frame

    def compare(self, baseline: Optional[str] = None,
                measures: Union[str, Iterable[str], None] = None, *,
                permutations: Optional[int] = None, seed: Optional[int] = None) -> pd.DataFrame:
        """The report's significance table (summary.csv, same numbers): one row per pipeline x
        measure with the mean, its 95% bootstrap interval (`ci_low`, `ci_high`), and against the
        baseline pipeline `delta`, the paired t-test and randomisation test p-values, both also
        Holm-adjusted, and `wins`/`ties`/`losses` (blank on the baseline's own rows).

        baseline: default the first pipeline of metrics.csv, as in the report.
        measures: keep only these rows. The Holm family stays the report's (every pipeline x
            measure), so the adjusted p-values do not change with this choice.
        permutations, seed: resamples of the randomisation test and the seed of it and of the
            bootstrap (default: the report's, as `harness report --permutations --seed`).
        """
        import pandas as pd
        from harness.reports.report import SUMMARY_COLUMNS, summary_rows
        from harness.reports.tables import choose_baseline, leaderboard, significance
        base = choose_baseline(self.folder, baseline)
        wanted = self._measures(measures)
        stats = _stats(permutations, seed)
        rows = summary_rows(leaderboard(self.folder, stats.bootstrap, stats.seed),
                            significance(self.folder, base, stats.permutation, stats.seed), base)
        frame = pd.DataFrame([r for r in rows if r[1] in wanted], columns=list(SUMMARY_COLUMNS))
        return frame.astype({"best": bool, "wins": "Int64", "ties": "Int64", "losses": "Int64",
                             **{c: float for c in ("mean", "ci_low", "ci_high", "delta",
                                                   "p_t_test", "p_t_test_holm", "p_randomisation",
                                                   "p_randomisation_holm")}})

    def report(self, out: Optional[PathLike] = None, *, baseline: Optional[str] = None,
               pair: Optional[tuple[str, str]] = None, permutations: Optional[int] = None,
               seed: Optional[int] = None) -> Path:
        """Write the HTML/CSV/Markdown report (as `harness report`) to `out` (default
        reports/<run-name>) and return the path of its index.html."""
        from harness.reports.report import build_report
        return build_report(self.path, out, baseline=baseline, pair=pair,
                            stats=_stats(permutations, seed))

    def check(self, baseline: Optional[PathLike] = None) -> Report:
        """The regression check (as `harness check`) against a baseline YAML, or by default the
        `expect:` blocks of the run's config. `.exit_code()`, `.summary()` and `.checks` hold the
        verdict; harness.regression.render formats it."""
        from harness.regression.baseline import expectations_from_config, load_baseline
        from harness.regression.check import run_check
        expected = (load_baseline(Path(baseline)) if baseline is not None
                    else expectations_from_config(self.folder))
        return run_check(self.folder, expected)

    def _measures(self, measures: Union[str, Iterable[str], None]) -> list[str]:
        if measures is None:
            return self.measures
        wanted = [measures] if isinstance(measures, str) else list(measures)
        unknown = [m for m in wanted if m not in self.measures]
        if unknown:
            raise HarnessError(f"measures: {', '.join(unknown)} not in "
                               f"{self.path / 'metrics.csv'}; it has: "
                               f"{', '.join(self.measures) or 'none'}")
        return wanted

    def __repr__(self) -> str:
        return (f"<harness.Results {self.run_name}: {len(self.folder.metrics)} pipeline(s) with "
                f"metrics, {len(self.failed)} failed, at {self.path}>")

    def _repr_html_(self) -> str:
        failed = "".join(f"<li>{html.escape(name)}: {html.escape(str(reason))}</li>"
                         for name, reason in self.failed.items())
        return (f"<p><b>{html.escape(self.run_name)}</b> ({html.escape(str(self.path))})</p>"
                + self.leaderboard().to_html(float_format="{:.4f}".format)
                + (f"<p>Failed:</p><ul>{failed}</ul>" if failed else ""))


def _stats(permutations: Optional[int], seed: Optional[int]):
    """The report's statistics settings; None keeps its default (`harness report`'s too)."""
    from harness.reports.report import StatsSettings
    given = {"permutation": permutations, "seed": seed}
    return StatsSettings(**{k: v for k, v in given.items() if v is not None})


class Runs(Mapping):
    """The ranked runs of a results folder by pipeline, each read from runs/ when asked for;
    pipelines without a recorded run (failed ones) are not keys."""

    def __init__(self, folder: Folder):
        self._folder = folder
        self._names = [n for n in folder.pipelines if folder.run_file(n) is not None]

    def __getitem__(self, pipeline: str) -> pd.DataFrame:
        import pandas as pd
        from harness.core.types import ranked
        from harness.storage.trec import read_run
        if pipeline not in self._names:
            raise KeyError(f"{pipeline!r} has no run in {self._folder.path}; runs: "
                           f"{', '.join(self._names) or 'none'}")
        run = read_run(self._folder.run_file(pipeline))
        return pd.DataFrame([(qid, doc, rank, score) for qid, docs in run.items()
                             for rank, (doc, score) in enumerate(ranked(docs), start=1)],
                            columns=["qid", "docid", "rank", "score"])

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
