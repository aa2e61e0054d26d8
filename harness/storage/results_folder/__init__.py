"""The results folder `harness run` writes and reports and regression checks read.

`layout` names its files, table headers, stages, modes and stats and the run-file rule; `writer`
writes it (the runner, and the synthetic folders of report tests, through the same class);
`reader` is its one strict reader. The layout is documented in docs/results.md.
"""
from harness.storage.results_folder import layout
from harness.storage.results_folder.reader import PipelineInfo, Results, TimingRow, load_results, read_yaml_mapping
from harness.storage.results_folder.writer import ResultsWriter

__all__ = ["layout", "PipelineInfo", "Results", "TimingRow", "load_results", "read_yaml_mapping",
           "ResultsWriter"]
