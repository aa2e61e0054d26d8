"""Fusion of several first-stage runs into one: `rrf` (ranks) and `combsum` (normalised scores)."""
from harness.fusion.combsum import CombSumFuser, CombSumParams
from harness.fusion.rrf import RRFFuser, RRFParams

__all__ = ["CombSumFuser", "CombSumParams", "RRFFuser", "RRFParams"]
