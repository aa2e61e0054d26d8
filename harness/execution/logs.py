"""Logging set-up shared by the CLI and the worker processes it starts (a forkserver worker
inherits no logging configuration, so it applies the parent's level itself)."""
from __future__ import annotations

import logging
from typing import Optional

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Engines that narrate their own start-up at INFO/DEBUG.
CHATTY = ("faiss.loader", "sentence_transformers", "httpx", "bm25s")


def configure(level: int) -> None:
    logging.basicConfig(level=level, format=FORMAT, datefmt="%H:%M:%S")
    if level > logging.DEBUG:
        for name in CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)


def current_level() -> Optional[int]:
    """The level a worker should use: the caller's, if the caller configured logging at all."""
    root = logging.getLogger()
    return root.level if root.handlers else None
