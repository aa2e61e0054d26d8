"""Fusion of several first-stage runs into one: `rrf` (ranks) and `combsum` (normalised scores)."""
from .combsum import CombSumFuser, CombSumParams
from .rrf import RRFFuser, RRFParams

__all__ = ["CombSumFuser", "CombSumParams", "RRFFuser", "RRFParams"]
