"""`cross-encoder`: sentence-transformers CrossEncoder scoring (query, document) pairs.

Scores are the model's raw logits, not its default sigmoid: the ranking is the same, but logits do
not saturate into ties for very relevant documents. `fp16` applies on CUDA only; on CPU it is
ignored with a warning (half precision is slow or unsupported there), so one config runs on both
kinds of machine; `stage_stats()["fp16"]` records what was used.
"""
from __future__ import annotations

import warnings
from typing import Mapping, Optional, Sequence

from pydantic import Field

from harness.core.context import RunContext, resolve_device
from harness.core.errors import ConfigError
from harness.core.inference_backends import BACKEND_DESCRIPTION, DEFAULT_BACKEND, Backend
from harness.core.registry import Params, register
from harness.core.types import Document
from harness.rerankers.base import Pair, PairwiseReranker

DEFAULT_MODEL = "cross-encoder/ms-marco-MiniLM-L-6-v2"
TOKENIZE_CHUNK = 1024  # documents tokenized at once when counting truncation


class CrossEncoderParams(Params):
    MODEL_FIELDS = ("model",)
    KEYED_UNLESS_DEFAULT = ("backend",)
    model: str = Field(DEFAULT_MODEL, description="hub id or local folder")
    batch_size: int = Field(32, ge=1)
    max_length: Optional[int] = Field(None, ge=1, description="tokens per pair; None = the model's")
    device: Optional[str] = Field(None, pattern=r"^(cpu|auto|cuda(:\d+)?)$",
                                  description="None = the run's device")
    fp16: bool = Field(False, description="half precision on CUDA; ignored on CPU")
    backend: Backend = Field(DEFAULT_BACKEND, description=BACKEND_DESCRIPTION)


@register("reranker", "cross-encoder", params=CrossEncoderParams,
          requires=("sentence_transformers",), install_hint="pip install sentence-transformers")
class CrossEncoderReranker(PairwiseReranker):
    """Cross-encoder rerank (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2) of any stage's top depth."""

    def __init__(self, params: CrossEncoderParams, ctx: Optional[RunContext] = None):
        super().__init__()
        import torch

        from harness.core import inference_backends
        from harness.core.models import resolve_model
        ctx = ctx or RunContext()
        torch.set_num_threads(ctx.threads)
        self.params = params
        self.device = resolve_device(params.device) if params.device else ctx.device
        if params.fp16 and params.backend != "torch":
            raise ConfigError(f"cross-encoder: fp16 applies to backend torch only (got backend "
                              f"{params.backend!r}); give backend torch-fp16 instead")
        self.fp16 = params.fp16 and self.device.startswith("cuda")
        if params.fp16 and not self.fp16:
            warnings.warn(f"cross-encoder {params.model!r}: fp16 is ignored on device "
                          f"{self.device!r}; scoring in float32", stacklevel=2)
        self.path = resolve_model(params.model)
        self.model, self.backend_stats = inference_backends.load(
            "cross-encoder", self.path, params.backend, self.device, ctx.threads, ctx.cache_dir,
            "cross-encoder", max_length=params.max_length)
        if self.fp16:
            self.model.half()
        self.max_length = int(self.model.max_seq_length)
        self._identity = torch.nn.Identity()
        self._doc_tokens: dict[tuple[str, int], int] = {}  # (doc id, text hash) -> tokens

    def _token_counts(self, texts: list[str]) -> list[int]:
        encoded = self.model.tokenizer(texts, add_special_tokens=False, truncation=False,
                                       verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def count_truncated(self, pairs: list[Pair], queries: Mapping[str, str],
                        corpus: Mapping[str, Document]) -> tuple[int, int]:
        """(pairs longer than max_length tokens, longest pair in tokens), special tokens included.

        A pair's length is query tokens + document tokens + the special tokens: exact for tokenizers
        that encode the two texts independently, as BERT's WordPiece does. Document counts are
        memoised, so a depth sweep or a repeated run does not tokenize the same documents again.
        """
        texts = {d: corpus[d].full_text for d in sorted({d for _, d in pairs})}
        keys = {d: (d, hash(text)) for d, text in texts.items()}  # a changed text is recounted
        new_docs = [d for d in texts if keys[d] not in self._doc_tokens]
        for start in range(0, len(new_docs), TOKENIZE_CHUNK):
            chunk = new_docs[start:start + TOKENIZE_CHUNK]
            counts = self._token_counts([texts[d] for d in chunk])
            self._doc_tokens.update((keys[d], n) for d, n in zip(chunk, counts))
        qids = sorted({q for q, _ in pairs})
        query_tokens = dict(zip(qids, self._token_counts([queries[q] for q in qids])))
        special = self.model.tokenizer.num_special_tokens_to_add(pair=True)
        lengths = [query_tokens[q] + self._doc_tokens[keys[d]] + special for q, d in pairs]
        return sum(n > self.max_length for n in lengths), max(lengths, default=0)

    def score_pairs(self, pairs: list[Pair], queries: Mapping[str, str],
                    corpus: Mapping[str, Document]) -> Sequence[float]:
        texts = [(queries[qid], corpus[doc_id].full_text) for qid, doc_id in pairs]
        scores = self.model.predict(texts, batch_size=self.params.batch_size,
                                    activation_fn=self._identity, convert_to_numpy=True,
                                    show_progress_bar=False)
        return scores.astype("float64").reshape(-1).tolist()

    def stage_stats(self) -> dict:
        """The last rerank call's counters and what the model truncated in it, counted here rather
        than in the timed rerank (tokenising every pair again is a sizeable share of its time)."""
        stats = {**super().stage_stats(), "device": self.device, "fp16": self.fp16,
                 "max_length": self.max_length, **self.backend_stats}
        if self.last_call is not None:
            truncated, longest = self.count_truncated(*self.last_call)
            stats.update(truncated_pairs=truncated, longest_pair_tokens=longest)
        return stats

    def models(self) -> dict[str, dict[str, str]]:
        from harness.core.models import model_record
        return {"model": model_record(self.params.model, self.path)}
