"""Shared test setup: offline, quiet, and a cache folder private to the test session."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Embedding and index caches go to a temp folder unless a run points elsewhere."""
    if "HARNESS_CACHE_DIR" not in os.environ:
        os.environ["HARNESS_CACHE_DIR"] = str(tmp_path_factory.mktemp("harness-cache"))
    yield
