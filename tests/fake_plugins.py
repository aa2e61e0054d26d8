"""Deterministic plugins for runner tests: they count their calls, so tests can assert that a
shared prefix runs once, and they can be told to fail or sleep at a known point."""
from __future__ import annotations

import os
import signal
import time
from collections import Counter
from typing import Mapping

from harness.core.registry import Params, register
from harness.core.types import Document, Run, ranked

CALLS: Counter = Counter()


class FakeParams(Params):
    fail: bool = False
    sleep_s: float = 0.0       # in each batch call
    alloc_mb: int = 0          # touch this much memory while searching
    crash: bool = False        # die abruptly (as a segfault or the OOM killer would)
    started_file: str = ""     # touched when a batch search starts: tells a test where it is
    first_call_s: float = 0.0  # the instance's first search call is this much slower (a cold start)
    index_s: float = 0.0       # index() takes this long (a model load or an index build)


@register("retriever", "fake-overlap", params=FakeParams)
class OverlapRetriever:
    """Scores documents by the number of query words they share."""

    def __init__(self, params: FakeParams, ctx):
        self.params = params
        self.searches = 0

    def index(self, corpus: Mapping[str, Document]) -> None:
        CALLS["index"] += 1
        time.sleep(self.params.index_s)
        self.docs = {d: set(doc.full_text.lower().split()) for d, doc in corpus.items()}

    def batch_threads(self) -> int:
        return 1  # pure Python

    def search(self, queries: Mapping[str, str], k: int) -> Run:
        CALLS["search"] += 1
        self.searches += 1
        if self.searches == 1:
            time.sleep(self.params.first_call_s)
        batch = len(queries) > 1
        if self.params.started_file and batch:
            open(self.params.started_file, "w").close()
        if self.params.fail:
            raise RuntimeError("fake retriever asked to fail")
        if self.params.crash:
            os.kill(os.getpid(), signal.SIGKILL)
        hog = bytearray(self.params.alloc_mb * 2**20)
        hog[::4096] = b"x" * len(hog[::4096])  # touch every page so it is resident
        time.sleep(self.params.sleep_s if batch else 0.0)  # batch calls only: latency stays small
        run = {}
        for qid, text in queries.items():
            words = set(text.lower().split())
            scores = {d: float(len(words & w)) for d, w in self.docs.items()}
            run[qid] = dict(ranked({d: s for d, s in scores.items() if s > 0})[:k])
        return run


@register("reranker", "fake-shortest")
class ShortestFirstReranker:
    """Reranks the top `depth` by shorter document id first; counts its calls."""

    def __init__(self, params: Params, ctx):
        CALLS["reranker_init"] += 1

    def rerank(self, queries, corpus, run: Run, depth: int) -> Run:
        CALLS["rerank"] += 1
        out = {}
        for qid, docs in run.items():
            order = [d for d, _ in ranked(docs)]
            head = sorted(order[:depth], key=lambda d: (len(d), d))
            tail = order[depth:]
            out[qid] = {d: float(len(order) - i) for i, d in enumerate(head + tail)}
        return out
