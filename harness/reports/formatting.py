"""Display formatting, applied only when rendering (tables keep full precision)."""
from __future__ import annotations

import math
from typing import Optional

STAT_UNITS = {"size_bytes": "bytes", "peak_rss_delta_bytes": "bytes"}


def value(x: Optional[float], digits: int = 4) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def signed(x: Optional[float], digits: int = 4) -> str:
    return "" if x is None else f"{x:+.{digits}f}"


def p_value(p: Optional[float]) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def size(n: Optional[float]) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def stat(name: str, x: Optional[float]) -> str:
    """A timings.csv value by its stat name: bytes human-readable, counts whole, times 3 digits."""
    if x is None:
        return ""
    if STAT_UNITS.get(name) == "bytes":
        return size(x)
    if name in ("n_queries", "threads"):
        return f"{x:.0f}"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"
