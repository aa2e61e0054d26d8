"""Run a function in a worker process with a time limit and a memory cap.

Workers come from a forkserver: a clean process started once, which never loads a model, starts
the JVM or spins up a thread pool, and forks each worker. Forking the caller instead would copy
whatever engine threads it already runs (a JVM, an OpenMP pool) into a child where they are
dead, and the child can hang on their locks (seen: a Lucene search forked from a process that
had used Lucene). The function and its arguments travel by pickle; each worker loads its own
models and indexes (cached embeddings and indexes make that seconds, not minutes).

The memory cap is enforced by the parent, which samples the worker's resident memory (with its
children) and kills it past the cap: an address-space rlimit would break the JVM and CUDA, which
reserve far more virtual memory than they use.
"""
from __future__ import annotations

import multiprocessing
import signal
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

import psutil

POLL_S = 0.05


@dataclass
class WorkerOutcome:
    value: Any = None
    failure: Optional[str] = None   # why the worker produced no value (timeout, memory, crash)


def _worker(fn: Callable[..., Any], args: tuple, conn, log_level: Optional[int]) -> None:
    if log_level is not None:
        from harness.execution import logs
        logs.configure(log_level)
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as exc:  # reported to the parent, which records it
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _rss(proc: psutil.Process) -> int:
    try:
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running())
    except psutil.Error:
        return 0


def _context():
    ctx = multiprocessing.get_context("forkserver")
    # Preloading makes the server import the harness once (and pass on sys.path).
    ctx.set_forkserver_preload(["harness.execution.runner"])
    return ctx


def run_isolated(fn: Callable[..., Any], args: tuple = (), timeout_s: Optional[float] = None,
                 memory_cap_bytes: Optional[int] = None) -> WorkerOutcome:
    """fn(*args) in a worker; fn must be importable (top level) and args picklable."""
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    from harness.execution.logs import current_level
    worker = ctx.Process(target=_worker, args=(fn, args, sender, current_level()), daemon=False)
    worker.start()
    sender.close()
    proc = psutil.Process(worker.pid)
    start = time.monotonic()
    message = None
    failure = None
    while True:
        if receiver.poll(POLL_S):
            try:
                message = receiver.recv()
            except EOFError:
                pass
            break
        if not worker.is_alive():
            break
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            failure = f"timeout: still running after timeout_s={timeout_s:g}"
            break
        if memory_cap_bytes is not None:
            rss = _rss(proc)
            if rss > memory_cap_bytes:
                failure = (f"memory cap exceeded: resident memory {rss / 2**20:.0f} MiB > "
                           f"memory_cap_mb={memory_cap_bytes / 2**20:.0f}")
                break
    if failure is not None:
        _kill_tree(proc)
    worker.join()
    receiver.close()
    if failure is not None:
        return WorkerOutcome(failure=failure)
    if message is None:
        code = worker.exitcode
        why = f"signal {-code} ({signal.Signals(-code).name})" if code and code < 0 else f"exit code {code}"
        return WorkerOutcome(failure=f"worker process died without a result: {why}")
    status, payload = message
    if status == "error":
        return WorkerOutcome(failure=payload)
    return WorkerOutcome(value=payload)


def _kill_tree(proc: psutil.Process) -> None:
    try:
        victims = [*proc.children(recursive=True), proc]
    except psutil.Error:
        victims = [proc]
    for p in victims:
        try:
            p.kill()
        except psutil.Error:
            pass
