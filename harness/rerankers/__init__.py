"""Second stages: rerank the top `depth` of any run; below-depth documents keep their order
beneath the reranked ones (see base.py)."""
from harness.rerankers.base import PairwiseReranker, below_depth_scores, rerank_run
from harness.rerankers.cross_encoder import CrossEncoderParams, CrossEncoderReranker
from harness.rerankers.oracle import OracleReranker

__all__ = ["CrossEncoderParams", "CrossEncoderReranker", "OracleReranker",
           "PairwiseReranker", "below_depth_scores", "rerank_run"]
