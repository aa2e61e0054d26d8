"""`dense`: a sentence-transformers bi-encoder over any ANN backend (exact `flat` by default).

When a MaxSim reranker uses the same model, `need_tokens` makes the one document forward pass
also keep per-token embeddings, cached beside the pooled vectors.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
from tqdm import tqdm
from pydantic import Field

from harness.core.context import RunContext
from harness.core.inference_backends import BACKEND_DESCRIPTION, DEFAULT_BACKEND, Backend
from harness.core.registry import DETERMINISTIC, Params, register
from harness.retrievers.vector import IndexSpec, VectorRetriever

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


class DenseParams(Params):
    MODEL_FIELDS = ("model",)
    KEYED_UNLESS_DEFAULT = ("backend",)
    model: str = MINILM
    batch_size: int = Field(64, ge=1)
    max_length: Optional[int] = Field(None, ge=1, description="tokens; None = the model's own")
    normalize: bool = True
    query_prefix: str = ""
    doc_prefix: str = ""
    backend: Backend = Field(DEFAULT_BACKEND, description=BACKEND_DESCRIPTION)
    index: IndexSpec = Field(default_factory=IndexSpec)


def token_encoder_key(params) -> tuple:
    """What decides a document's token embeddings (see RunContext.token_encoders)."""
    return (params.model, params.max_length, params.normalize, params.doc_prefix, params.backend)


def normalize_rows(vectors: np.ndarray) -> None:
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def document_arrays(vectors: np.ndarray, token_lengths: np.ndarray,
                    tokens: Optional[list[np.ndarray]]) -> Dict[str, np.ndarray]:
    """What the embedding cache keeps for a corpus (vectors already normalised if configured)."""
    arrays = {"vectors": vectors, "token_lengths": token_lengths}
    if tokens is not None:
        from harness.retrievers.late_interaction import flatten_tokens
        arrays["token_vectors"], arrays["token_offsets"] = flatten_tokens(tokens)
    return arrays


def load_sentence_transformer(name: str, max_length: Optional[int], backend: str,
                              ctx: RunContext, where: str):
    """(model, backend stats): the model on the run's device through `backend`."""
    from harness.core import inference_backends
    from harness.core.models import resolve_model
    model, stats = inference_backends.load("sentence-transformer", resolve_model(name), backend,
                                           ctx.device, ctx.threads, ctx.cache_dir, where)
    if max_length is not None:
        model.max_seq_length = max_length
    return model, stats


@register("retriever", "dense", params=DenseParams, requires=("sentence_transformers",),
          install_hint="pip install sentence-transformers", tolerance=DETERMINISTIC)
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
        self.model, backend_stats = load_sentence_transformer(
            params.model, params.max_length, params.backend, ctx, "dense")
        self.stats.update(backend_stats)
        self.forward_passes = 0  # documents encoded by this instance; tests count them

    def encoder_key(self) -> dict:
        from harness.core.models import model_fingerprint, resolve_model
        key = {"model": self.params.model,
               "model_hash": model_fingerprint(resolve_model(self.params.model)),
               "max_length": self.model.max_seq_length, "normalize": self.params.normalize,
               "prefix": self.params.doc_prefix}
        if self.params.backend != DEFAULT_BACKEND:  # torch entries keep their published keys
            key["backend"] = self.params.backend
        return key

    def required_arrays(self) -> tuple[str, ...]:
        pooled = ("vectors", "token_lengths")
        return pooled + ("token_vectors", "token_offsets") if self.need_tokens else pooled

    def document_arrays(self, corpus):
        from harness.core.models import truncation_stats
        key, arrays = super().document_arrays(corpus)
        self.stats.update(truncation_stats(arrays["token_lengths"], self.model.max_seq_length))
        return key, arrays

    def models(self) -> dict[str, dict[str, str]]:
        from harness.core.models import model_record
        return {"model": model_record(self.params.model)}

    def forward(self, texts: list[str], tokens: bool = False, progress: bool = False
                ) -> tuple[np.ndarray, Optional[list[np.ndarray]]]:
        """Pooled vectors (n, d) float32 — normalised if configured — and, if asked, each text's
        token embeddings (padding dropped) from the same forward pass. Batches are formed by
        length (longest first) for speed; results come back in input order."""
        pooled = np.empty((len(texts), self.model.get_embedding_dimension()), np.float32)
        token_out: Optional[list] = [None] * len(texts) if tokens else None
        for rows in tqdm(self.batches(texts), desc="encoding", unit="batch", disable=not progress):
            vectors, matrices = self.forward_batch([texts[i] for i in rows], tokens)
            pooled[rows] = vectors
            for i, matrix in zip(rows, matrices or []):
                token_out[i] = matrix
        if self.params.normalize:
            normalize_rows(pooled)
        return pooled, token_out

    def batches(self, texts: list[str]) -> list[list[int]]:
        """The row indices of each forward batch. Padding depends on a batch's members, so an
        encoding elsewhere (ray_encode) must form exactly these batches to get the same bits."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        size = self.params.batch_size
        return [order[start:start + size] for start in range(0, len(texts), size)]

    def forward_batch(self, texts: list[str], tokens: bool = False
                      ) -> tuple[np.ndarray, Optional[list[np.ndarray]]]:
        """One batch: pooled vectors before normalisation, and each text's token embeddings."""
        import torch
        from sentence_transformers.util import batch_to_device
        with torch.inference_mode():
            features = batch_to_device(self.model.preprocess(texts), self.model.device)
            out = self.model(features)
            pooled = out["sentence_embedding"].float().cpu().numpy()
            if not tokens:
                return pooled, None
            lengths = out["attention_mask"].sum(dim=1).tolist()
            matrix = out["token_embeddings"].float().cpu().numpy()
        return pooled, [matrix[j, :int(n)] for j, n in enumerate(lengths)]

    def document_texts(self, texts: list[str]) -> list[str]:
        return [self.params.doc_prefix + t for t in texts]

    def token_lengths(self, texts: list[str]) -> np.ndarray:
        """Untruncated lengths, kept with the vectors: how many documents the model cut short."""
        lengths = self.model.tokenizer(texts, truncation=False, verbose=False)["input_ids"]
        return np.array([len(x) for x in lengths], np.int32)

    def encode_documents(self, texts: list[str]) -> Dict[str, np.ndarray]:
        texts = self.document_texts(texts)
        self.forward_passes += len(texts)
        vectors, tokens = self.forward(texts, tokens=self.need_tokens, progress=self.ctx.progress)
        return document_arrays(vectors, self.token_lengths(texts), tokens)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.forward([self.params.query_prefix + t for t in texts])[0]
