"""`dense`: a sentence-transformers bi-encoder over any ANN backend (exact `flat` by default).

When a MaxSim reranker uses the same model, `need_tokens` makes the one document forward pass
also keep per-token embeddings, cached beside the pooled vectors.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
from pydantic import Field

from ..context import RunContext
from ..registry import Params, register
from .vector import IndexSpec, VectorRetriever

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


class DenseParams(Params):
    MODEL_FIELDS = ("model",)
    model: str = MINILM
    batch_size: int = Field(64, ge=1)
    max_length: Optional[int] = Field(None, ge=1, description="tokens; None = the model's own")
    normalize: bool = True
    query_prefix: str = ""
    doc_prefix: str = ""
    index: IndexSpec = Field(default_factory=IndexSpec)


def token_encoder_key(params) -> tuple:
    """What decides a document's token embeddings (see RunContext.token_encoders)."""
    return (params.model, params.max_length, params.normalize, params.doc_prefix)


def load_sentence_transformer(name: str, device: str, max_length: Optional[int]):
    from sentence_transformers import SentenceTransformer

    from ..models import resolve_model
    model = SentenceTransformer(resolve_model(name), device=device)
    if max_length is not None:
        model.max_seq_length = max_length
    return model


@register("retriever", "dense", params=DenseParams, requires=("sentence_transformers",),
          install_hint="pip install sentence-transformers")
class BiEncoderRetriever(VectorRetriever):
    """Sentence-transformers bi-encoder (e.g. all-MiniLM-L6-v2), cosine or dot product."""

    def __init__(self, params: DenseParams, ctx: RunContext, need_tokens: bool = False):
        super().__init__(params.index, ctx)
        import torch
        torch.set_num_threads(ctx.threads)
        self.params = params
        self.need_tokens = need_tokens or token_encoder_key(params) in ctx.token_encoders
        self.similarity = "cos" if params.normalize else "dot"
        self.normalized = params.normalize
        self.model = load_sentence_transformer(params.model, ctx.device, params.max_length)
        self.forward_passes = 0  # documents encoded by this instance; tests count them

    def encoder_key(self) -> dict:
        from ..models import model_fingerprint, resolve_model
        return {"model": self.params.model,
                "model_hash": model_fingerprint(resolve_model(self.params.model)),
                "max_length": self.model.max_seq_length, "normalize": self.params.normalize,
                "prefix": self.params.doc_prefix}

    def required_arrays(self) -> tuple[str, ...]:
        return ("vectors", "token_vectors", "token_offsets") if self.need_tokens else ("vectors",)

    def encode_documents(self, texts: list[str]) -> Dict[str, np.ndarray]:
        texts = [self.params.doc_prefix + t for t in texts]
        self.forward_passes += len(texts)
        if not self.need_tokens:
            return {"vectors": self._encode(texts)}
        outputs = self.model.encode(texts, batch_size=self.params.batch_size, output_value=None,
                                    show_progress_bar=self.ctx.progress)
        pooled = np.stack([o["sentence_embedding"].float().cpu().numpy() for o in outputs])
        if self.params.normalize:
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        tokens, offsets = [], [0]
        for o in outputs:  # drop padding positions: keep tokens under the attention mask
            n = int(o["attention_mask"].sum())
            tokens.append(o["token_embeddings"][:n].float().cpu().numpy().astype(np.float16))
            offsets.append(offsets[-1] + n)
        return {"vectors": pooled.astype(np.float32), "token_vectors": np.concatenate(tokens),
                "token_offsets": np.asarray(offsets, dtype=np.int64)}

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([self.params.query_prefix + t for t in texts], progress=False)

    def _encode(self, texts: list[str], progress: Optional[bool] = None) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.params.batch_size,
                                 normalize_embeddings=self.params.normalize,
                                 convert_to_numpy=True, show_progress_bar=(
                                     self.ctx.progress if progress is None else progress)
                                 ).astype(np.float32)
