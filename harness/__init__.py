"""Retrieval benchmarking harness.

The Python API (harness/api.py; README "Python API"):

    harness.run(config, out=None, **overrides) -> harness.Results   # run a benchmark
    harness.load(results_dir) -> harness.Results                     # read a results folder

`run`, `load` and `Results` are imported on first use, so `import harness` loads neither pandas
nor torch.
"""
from typing import TYPE_CHECKING

from harness.core.errors import ConfigError, DataError, HarnessError

if TYPE_CHECKING:
    from harness.api import Results, load, run

__version__ = "0.1.0"
__all__ = ["run", "load", "Results", "ConfigError", "DataError", "HarnessError"]

_LAZY = ("run", "load", "Results")


def __getattr__(name: str):
    if name in _LAZY:
        from harness import api
        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
