"""Second stages: rerank the top `depth` of any run; below-depth documents keep their order
beneath the reranked ones (see base.py)."""
from .base import PairwiseReranker, below_depth_scores, rerank_run
from .cross_encoder import CrossEncoderParams, CrossEncoderReranker
from .oracle import OracleReranker

__all__ = ["CrossEncoderParams", "CrossEncoderReranker", "OracleReranker",
           "PairwiseReranker", "below_depth_scores", "rerank_run"]
