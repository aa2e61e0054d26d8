"""The three trainers, each through sentence-transformers' own trainer, writing a folder that
loads through exactly the loader a user's model of that kind uses.

- bi_encoder: MultipleNegativesRankingLoss (in-batch negatives, plus mined hard negatives as
  extra columns) with the no-duplicates batch sampler; saved as a SentenceTransformer folder.
- two_tower: two copies of the base behind a query/document Router, trained jointly with the
  same loss; each tower saved as a plain Hugging Face encoder (`question/`, `context/`) with a
  `harness_tower.json` marker the `dpr` retriever checks (role, pooling, normalisation).
- cross_encoder: binary cross-entropy (positive weighted by `pos_weight`) or LambdaLoss
  (listwise: one positive and its negatives per query) over a fresh one-logit head.

On CUDA training runs under bf16 autocast (fp16 where bf16 is unsupported); on CPU in float32.
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from harness.core.models import resolve_model
from harness.training.data import Examples
from harness.training.spec import TrainSpec

log = logging.getLogger(__name__)
TOWER_MARKER = "harness_tower.json"
LOSS_POINTS = 20  # loss values logged per training run


def _arguments(cls, spec: TrainSpec, out_dir: Path, n_rows: int, device: str, progress: bool,
               **extra):
    import torch
    steps = math.ceil(math.ceil(n_rows / spec.batch_size) * spec.epochs)
    cuda = device.startswith("cuda")
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return cls(output_dir=str(out_dir), num_train_epochs=spec.epochs,
               per_device_train_batch_size=spec.batch_size, learning_rate=spec.lr,
               warmup_ratio=spec.warmup_ratio, seed=spec.seed, data_seed=spec.seed,
               logging_steps=max(1, steps // LOSS_POINTS), save_strategy="no", report_to=[],
               disable_tqdm=not progress, use_cpu=not cuda, bf16=bf16, fp16=cuda and not bf16,
               dataloader_num_workers=0, **extra)


def _fit(trainer, n_samples: float) -> dict:
    """Train; the record of it: wall time, samples/s and the logged loss curve."""
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    curve = [[int(e["step"]), float(e["loss"])] for e in trainer.state.log_history if "loss" in e]
    return {"wall_s": wall, "samples_per_s": n_samples / wall if wall else 0.0,
            "steps": int(trainer.state.global_step), "loss_curve": curve}


def _seed(seed: int) -> None:
    # Before any model is built: a fresh head (cross-encoder) is initialised from this seed.
    from transformers import set_seed
    set_seed(seed)


def _columns(ex: Examples) -> dict[str, list[str]]:
    columns = {"anchor": ex.queries, "positive": ex.positives}
    width = min((len(n) for n in ex.negatives), default=0)  # every row needs every column
    for j in range(width):
        columns[f"negative_{j + 1}"] = [n[j] for n in ex.negatives]
    return columns


def _mnrl(model, spec: TrainSpec, ex: Examples, work: Path, device: str, progress: bool,
          **extra) -> dict:
    from datasets import Dataset as HFDataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    rows = HFDataset.from_dict(_columns(ex))
    args = _arguments(SentenceTransformerTrainingArguments, spec, work, len(rows), device, progress,
                      batch_sampler=BatchSamplers.NO_DUPLICATES, **extra)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=rows,
                                         loss=MultipleNegativesRankingLoss(model))
    return _fit(trainer, len(rows) * spec.epochs)


def _sentence_transformer(spec: TrainSpec, device: str):
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(resolve_model(spec.base), device=device)
    model.max_seq_length = spec.max_length
    return model


def train_bi_encoder(spec: TrainSpec, ex: Examples, out: Path, work: Path, device: str,
                     progress: bool) -> dict:
    _seed(spec.seed)
    model = _sentence_transformer(spec, device)
    record = _mnrl(model, spec, ex, work, device, progress)
    model.save(str(out / "model"))
    return record


def train_two_tower(spec: TrainSpec, ex: Examples, out: Path, work: Path, device: str,
                    progress: bool) -> dict:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Router, Transformer
    _seed(spec.seed)
    question, context = (list(_sentence_transformer(spec, device)) for _ in range(2))
    router = Router.for_query_document(query_modules=question, document_modules=context)
    model = SentenceTransformer(modules=[router], device=device)
    record = _mnrl(model, spec, ex, work, device, progress,
                   router_mapping={"anchor": "query", "positive": "document",
                                   **{c: "document" for c in _columns(ex) if c.startswith("negative")}})
    for role, modules in (("question", question), ("context", context)):
        transformer = next(m for m in modules if isinstance(m, Transformer))
        pooling = next(m for m in modules if isinstance(m, Pooling))
        mode = pooling.pooling_mode
        if mode not in ("mean", "cls"):
            raise ValueError(f"two_tower: base pooling {mode!r} cannot be served by dpr (cls, mean)")
        folder = out / role
        transformer.auto_model.save_pretrained(folder)
        transformer.tokenizer.save_pretrained(folder)
        # MNRL trains cosine similarity: the towers are served normalised.
        (folder / TOWER_MARKER).write_text(json.dumps(
            {"role": role, "pooling": mode, "normalize": True, "max_length": spec.max_length},
            indent=2) + "\n", encoding="utf-8")
    return record


def train_cross_encoder(spec: TrainSpec, ex: Examples, out: Path, work: Path, device: str,
                        progress: bool) -> dict:
    import torch
    from datasets import Dataset as HFDataset
    from sentence_transformers.cross_encoder import (CrossEncoder, CrossEncoderTrainer,
                                                     CrossEncoderTrainingArguments)
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, LambdaLoss
    _seed(spec.seed)
    model = CrossEncoder(resolve_model(spec.base), num_labels=1, max_length=spec.max_length,
                         device=device)
    if spec.resolved_loss == "bce":
        rows = {"query": [], "passage": [], "label": []}
        for q, pos, negs in zip(ex.queries, ex.positives, ex.negatives):
            for text, label in [(pos, 1.0)] + [(n, 0.0) for n in negs]:
                rows["query"].append(q)
                rows["passage"].append(text)
                rows["label"].append(label)
        weight = spec.pos_weight if spec.pos_weight is not None else float(spec.negatives_per_query)
        loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(weight))
    else:
        rows = {"query": ex.queries, "docs": [[p] + n for p, n in zip(ex.positives, ex.negatives)],
                "labels": [[1] + [0] * len(n) for n in ex.negatives]}
        loss = LambdaLoss(model)
    data = HFDataset.from_dict(rows)
    args = _arguments(CrossEncoderTrainingArguments, spec, work, len(data), device, progress)
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=data, loss=loss)
    record = _fit(trainer, len(data) * spec.epochs)
    model.save_pretrained(str(out / "model"))
    return record


TRAINERS = {"bi_encoder": train_bi_encoder, "two_tower": train_two_tower,
            "cross_encoder": train_cross_encoder}
