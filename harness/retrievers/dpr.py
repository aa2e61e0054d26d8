"""`dpr`: a two-tower dual encoder (separate question and passage encoders), dot product.

Each tower is either a DPR checkpoint (config `model_type == "dpr"`, loaded as
`DPRQuestionEncoder` / `DPRContextEncoder`, vector = the model's pooler output) or any other
Hugging Face encoder loaded with `AutoModel`, pooled by `pooling` (`cls` or `mean`). The type is
read from the checkpoint's config, never guessed from the name. Document vectors are cached and
served by any ANN backend through VectorRetriever; query vectors are encoded live.
"""
from __future__ import annotations

from typing import Dict, Literal, Optional

import numpy as np
from pydantic import Field

from harness.core.context import RunContext
from harness.core import inference_backends
from harness.core.errors import ConfigError
from harness.core.inference_backends import BACKEND_DESCRIPTION, DEFAULT_BACKEND, Backend
from harness.core.registry import DETERMINISTIC, Params, register
from harness.retrievers.vector import IndexSpec, VectorRetriever

DPR_QUESTION = "facebook/dpr-question_encoder-single-nq-base"
DPR_CONTEXT = "facebook/dpr-ctx_encoder-single-nq-base"


class DPRParams(Params):
    MODEL_FIELDS = ("question_model", "context_model")
    KEYED_UNLESS_DEFAULT = ("backend",)
    question_model: str = Field(DPR_QUESTION, description="hub id or local folder")
    context_model: str = Field(DPR_CONTEXT, description="hub id or local folder")
    pooling: Literal["cls", "mean"] = Field("cls", description="for non-DPR encoders only")
    batch_size: int = Field(32, ge=1)
    max_length: Optional[int] = Field(None, ge=1, description="tokens; None = the model's own")
    normalize: bool = Field(False, description="DPR is trained for raw dot product")
    backend: Backend = Field(DEFAULT_BACKEND, description=BACKEND_DESCRIPTION + " (onnx: non-DPR "
                             "encoders only; optimum has no ONNX export for DPR checkpoints)")
    index: IndexSpec = Field(default_factory=IndexSpec)


class Tower:
    """One encoder: tokenizer + model + pooling, texts -> (n, d) float32."""

    def __init__(self, name: str, role: Literal["question", "context"], pooling: str,
                 max_length: Optional[int], backend: str, ctx: RunContext):
        from transformers import AutoConfig, AutoTokenizer

        from harness.core.models import resolve_model
        self.name = name
        self.path = resolve_model(name)
        config = AutoConfig.from_pretrained(self.path)
        self.is_dpr = config.model_type == "dpr"
        where = f"dpr {role}_model"
        if self.is_dpr:
            if backend in inference_backends.ONNX_BACKENDS:
                raise ConfigError(f"{where}: {name!r} is a DPR checkpoint, which optimum cannot "
                                  f"export to ONNX (backend {backend!r}); use a torch backend")
            inference_backends.check_backend(backend, ctx.device, where)
            model = self._dpr_class(config, role).from_pretrained(self.path).to(ctx.device).eval()
            self.model = inference_backends.cast_torch(model, backend)
            self.backend_stats = {"backend": backend}
            self.pooling = "dpr-pooler"
        else:
            self.model, self.backend_stats = inference_backends.load(
                "feature-extraction", self.path, backend, ctx.device, ctx.threads, ctx.cache_dir,
                where)
            self.pooling = pooling
        self.trained = self._check_trained(role)
        self.device = ctx.device
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        limit = min(self.tokenizer.model_max_length,
                    getattr(config, "max_position_embeddings", None) or 512)
        self.max_length = min(max_length, limit) if max_length else limit

    def _dpr_class(self, config, role: str):
        from transformers import DPRContextEncoder, DPRQuestionEncoder
        wanted = DPRQuestionEncoder if role == "question" else DPRContextEncoder
        # A DPR config does not say which tower it is; its `architectures` does. Loading a
        # context checkpoint as a question encoder would silently start from random weights.
        architectures = getattr(config, "architectures", None) or []
        if architectures and wanted.__name__ not in architectures:
            raise ConfigError(f"dpr: {self.name!r} is a {', '.join(architectures)} checkpoint, "
                              f"but it is given as the {role} encoder ({role}_model)")
        return wanted

    def _check_trained(self, role: str) -> dict:
        """A tower trained here (harness.training, two_tower) carries its role and how it was
        trained; serving it as the other tower or pooled differently is refused."""
        import json
        from pathlib import Path

        from harness.training.trainers import TOWER_MARKER
        marker = Path(self.path) / TOWER_MARKER
        if not marker.is_file():
            return {}
        trained = json.loads(marker.read_text(encoding="utf-8"))
        if trained["role"] != role:
            raise ConfigError(f"dpr: {self.name!r} is a trained {trained['role']} tower, but it "
                              f"is given as the {role} encoder ({role}_model): towers swapped?")
        if trained["pooling"] != self.pooling:
            raise ConfigError(f"dpr: {self.name!r} was trained with {trained['pooling']} pooling; "
                              f"set pooling: {trained['pooling']}")
        return trained

    def token_lengths(self, texts: list[str]) -> np.ndarray:
        """Each text's untruncated length in tokens, special tokens included."""
        ids = self.tokenizer(texts, truncation=False, verbose=False)["input_ids"]
        return np.array([len(x) for x in ids], np.int32)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # less padding
        out: list[np.ndarray] = [np.empty(0, np.float32)] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                inputs = self.tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                                        max_length=self.max_length,
                                        return_tensors="pt").to(self.device)
                vectors = self._pool(self.model(**inputs), inputs["attention_mask"])
                for row, i in enumerate(batch):
                    out[i] = vectors[row].float().cpu().numpy()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack(out).astype(np.float32)

    def _pool(self, output, mask):
        if self.is_dpr:
            return output.pooler_output  # DPR's [CLS] (+ projection when projection_dim > 0)
        hidden = output.last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@register("retriever", "dpr", params=DPRParams, requires=("transformers",),
          install_hint="pip install transformers", tolerance=DETERMINISTIC)
class DPRRetriever(VectorRetriever):
    """Two-tower dual encoder (DPR NQ encoders, or any two HF encoders with cls/mean pooling)."""

    def __init__(self, params: DPRParams, ctx: RunContext):
        super().__init__(params.index, ctx)
        import torch
        torch.set_num_threads(ctx.threads)
        self.params = params
        self.similarity = "cos" if params.normalize else "dot"
        self.normalized = params.normalize
        self.question = Tower(params.question_model, "question", params.pooling,
                              params.max_length, params.backend, ctx)
        self.context = Tower(params.context_model, "context", params.pooling,
                             params.max_length, params.backend, ctx)
        self.stats.update({f"{role}_{k}": v for role, tower in (("question", self.question),
                                                                 ("context", self.context))
                           for k, v in tower.backend_stats.items()}, backend=params.backend)
        exports = [t.backend_stats.get("backend_build_wall_s") for t in (self.question, self.context)]
        if any(x is not None for x in exports):
            self.stats["backend_build_wall_s"] = sum(x or 0.0 for x in exports)
        if not params.normalize and (self.question.trained or self.context.trained):
            raise ConfigError("dpr: trained towers score by cosine similarity; set normalize: true")
        self.forward_passes = 0  # documents encoded by this instance; tests count them

    def encoder_key(self) -> dict:
        from harness.core.models import model_fingerprint
        key = {"model": self.params.context_model,
               "model_hash": model_fingerprint(self.context.path), "role": "dpr-context",
               "pooling": self.context.pooling, "max_length": self.context.max_length,
               "normalize": self.params.normalize}
        if self.params.backend != DEFAULT_BACKEND:  # torch entries keep their published keys
            key["backend"] = self.params.backend
        return key

    def required_arrays(self) -> tuple[str, ...]:
        return ("vectors", "token_lengths")

    def document_arrays(self, corpus):
        from harness.core.models import truncation_stats
        key, arrays = super().document_arrays(corpus)
        # From lengths cached with the vectors: recorded on a cache hit too.
        self.stats.update(truncation_stats(arrays["token_lengths"], self.context.max_length))
        return key, arrays

    def encode_documents(self, texts: list[str]) -> Dict[str, np.ndarray]:
        self.forward_passes += len(texts)
        vectors = self._maybe_normalize(self.context.encode(texts, self.params.batch_size))
        return {"vectors": vectors, "token_lengths": self.context.token_lengths(texts)}

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._maybe_normalize(self.question.encode(texts, self.params.batch_size))

    def models(self) -> dict[str, dict[str, str]]:
        from harness.core.models import model_record
        return {"question_model": model_record(self.params.question_model, self.question.path),
                "context_model": model_record(self.params.context_model, self.context.path)}

    def _maybe_normalize(self, vectors: np.ndarray) -> np.ndarray:
        if not self.params.normalize:
            return vectors
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
