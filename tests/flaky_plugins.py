"""Plugins that misbehave in controlled ways, for the failure-handling tests."""
from __future__ import annotations

import math
import os
from typing import Mapping

from harness.core.registry import Params, register
from harness.core.types import Document, Run


class FlakyParams(Params):
    fail_once_file: str = ""   # fail (and delete the file) while this file exists
    nan_query: str = ""        # give this query's top document a NaN score


@register("retriever", "fake-flaky", params=FlakyParams)
class FlakyRetriever:
    """Scores every document by its position; fails once, or emits NaN, when told to."""

    def __init__(self, params: FlakyParams, ctx):
        self.params = params

    def index(self, corpus: Mapping[str, Document]) -> None:
        self.doc_ids = list(corpus)

    def search(self, queries: Mapping[str, str], k: int) -> Run:
        flag = self.params.fail_once_file
        if flag and os.path.exists(flag):
            os.remove(flag)
            raise RuntimeError("flaky retriever failed once")
        run = {q: {d: float(len(self.doc_ids) - i) for i, d in enumerate(self.doc_ids[:k])}
               for q in queries}
        if self.params.nan_query in run:
            run[self.params.nan_query][self.doc_ids[0]] = math.nan
        return run
