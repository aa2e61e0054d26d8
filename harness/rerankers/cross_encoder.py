"""`cross-encoder`: sentence-transformers CrossEncoder scoring (query, document) pairs.

Scores are the model's raw logits, not its default sigmoid: the ranking is the same, but logits do
not saturate into ties for very relevant documents. `fp16` applies on CUDA only; on CPU it is
ignored with a warning (half precision is slow or unsupported there), so one config runs on both
kinds of machine; `stats["fp16"]` records what was used.
"""
from __future__ import annotations

import warnings
from typing import Mapping, Optional, Sequence

from pydantic import Field

from ..context import RunContext, resolve_device
from ..registry import Params, register
from ..types import Document
from .base import Pair, PairwiseReranker

DEFAULT_MODEL = "cross-encoder/ms-marco-MiniLM-L-6-v2"
TRUNCATION_CHUNK = 1024  # pairs tokenized at once when counting truncation


class CrossEncoderParams(Params):
    model: str = Field(DEFAULT_MODEL, description="hub id or local folder")
    batch_size: int = Field(32, ge=1)
    max_length: Optional[int] = Field(None, ge=1, description="tokens per pair; None = the model's")
    device: Optional[str] = Field(None, pattern=r"^(cpu|auto|cuda(:\d+)?)$",
                                  description="None = the run's device")
    fp16: bool = Field(False, description="half precision on CUDA; ignored on CPU")


@register("reranker", "cross-encoder", params=CrossEncoderParams,
          requires=("sentence_transformers",), install_hint="pip install sentence-transformers")
class CrossEncoderReranker(PairwiseReranker):
    """Cross-encoder rerank (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2) of any stage's top depth."""

    def __init__(self, params: CrossEncoderParams, ctx: Optional[RunContext] = None):
        super().__init__()
        import torch
        from sentence_transformers import CrossEncoder

        from ..models import resolve_model
        ctx = ctx or RunContext()
        torch.set_num_threads(ctx.threads)
        self.params = params
        self.device = resolve_device(params.device) if params.device else ctx.device
        self.fp16 = params.fp16 and self.device.startswith("cuda")
        if params.fp16 and not self.fp16:
            warnings.warn(f"cross-encoder {params.model!r}: fp16 is ignored on device "
                          f"{self.device!r}; scoring in float32", stacklevel=2)
        self.model = CrossEncoder(resolve_model(params.model), device=self.device,
                                  max_length=params.max_length)
        if self.fp16:
            self.model.half()
        self.max_length = int(self.model.max_seq_length)
        self._identity = torch.nn.Identity()

    def count_truncated(self, pairs: list[tuple[str, str]]) -> tuple[int, int]:
        """(pairs longer than max_length tokens, longest pair in tokens), special tokens included."""
        tokenizer = self.model.tokenizer
        truncated = longest = 0
        for start in range(0, len(pairs), TRUNCATION_CHUNK):
            chunk = pairs[start:start + TRUNCATION_CHUNK]
            encoded = tokenizer([q for q, _ in chunk], [d for _, d in chunk], truncation=False,
                                verbose=False)
            lengths = [len(ids) for ids in encoded["input_ids"]]
            truncated += sum(n > self.max_length for n in lengths)
            longest = max(longest, *lengths)
        return truncated, longest

    def score_pairs(self, pairs: list[Pair], queries: Mapping[str, str],
                    corpus: Mapping[str, Document]) -> Sequence[float]:
        texts = [(queries[qid], corpus[doc_id].full_text) for qid, doc_id in pairs]
        truncated, longest = self.count_truncated(texts)
        self.stats.update(model=self.params.model, device=self.device, fp16=self.fp16,
                          max_length=self.max_length, truncated_pairs=truncated,
                          longest_pair_tokens=longest)
        scores = self.model.predict(texts, batch_size=self.params.batch_size,
                                    activation_fn=self._identity, convert_to_numpy=True,
                                    show_progress_bar=False)
        return scores.astype("float64").reshape(-1).tolist()
