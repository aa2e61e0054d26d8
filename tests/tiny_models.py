"""Tiny Hugging Face models built on the fly, saved as real checkpoint folders.

No checkpoint can be downloaded in tests, so each builder writes a randomly initialised model
(seeded: the same seed gives the same weights) plus a WordPiece tokenizer over a small vocabulary,
built with `tokenizers` by benchmarks/gpu_suite.py's builder (one way that works under
transformers 4.x and 5.x). The folders load through exactly the loaders a real checkpoint uses
(`CrossEncoder(path)`, `SentenceTransformer(path)`, `AutoModel.from_pretrained(path)`,
`DPRQuestionEncoder.from_pretrained(path)`).
"""
from __future__ import annotations

import importlib.util
import string
import sys
from functools import lru_cache
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Whole words for common text, plus every letter and digit as a word start and as a "##"
# continuation, so any ASCII text tokenizes without [UNK].
_WORDS = ("the a an of and or to in on for with is are was be by as at from that this it not "
          "query document retrieval search rank model dense sparse fusion cell cells protein gene "
          "cancer virus study results patients treatment effect data high low increased").split()
_CHARS = list(string.ascii_lowercase + string.digits + string.punctuation)


def tiny_vocab() -> list[str]:
    vocab = SPECIAL_TOKENS + _CHARS + ["##" + c for c in string.ascii_lowercase + string.digits]
    return vocab + [w for w in _WORDS if w not in vocab]


@lru_cache(maxsize=1)
def _gpu_suite():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_suite.py"
    spec = importlib.util.spec_from_file_location("gpu_suite", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _tokenizer(cls=None, model_max_length: int = 512):
    from transformers import BertTokenizerFast
    return _gpu_suite().wordpiece_tokenizer(tiny_vocab(), cls or BertTokenizerFast,
                                            model_max_length)


def _bert_config(num_labels: int = 1, max_position_embeddings: int = 512, hidden_size: int = 32,
                 num_hidden_layers: int = 2, num_attention_heads: int = 2,
                 intermediate_size: int = 37):
    from transformers import BertConfig
    return BertConfig(vocab_size=len(tiny_vocab()), hidden_size=hidden_size,
                      num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                      intermediate_size=intermediate_size,
                      max_position_embeddings=max_position_embeddings, num_labels=num_labels)


def tiny_bert_classifier(path, seed: int = 0, num_labels: int = 1, **config) -> Path:
    """A BertForSequenceClassification folder: what a cross-encoder checkpoint is."""
    import torch
    from transformers import BertForSequenceClassification
    folder = Path(path)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(_bert_config(num_labels=num_labels, **config)).eval()
    model.save_pretrained(folder)
    _tokenizer(model_max_length=model.config.max_position_embeddings).save_pretrained(folder)
    return folder


def tiny_bert_encoder(path, seed: int = 0, **config) -> Path:
    """A plain BertModel folder (token embeddings: MaxSim, or a DPR-style tower)."""
    import torch
    from transformers import BertModel
    folder = Path(path)
    torch.manual_seed(seed)
    model = BertModel(_bert_config(**config)).eval()
    model.save_pretrained(folder)
    _tokenizer(model_max_length=model.config.max_position_embeddings).save_pretrained(folder)
    return folder


def tiny_dpr(path, seed: int = 0, projection_dim: int = 0) -> tuple[Path, Path]:
    """`path/question` (DPRQuestionEncoder) and `path/context` (DPRContextEncoder) folders."""
    import torch
    from transformers import (DPRConfig, DPRContextEncoder, DPRContextEncoderTokenizerFast,
                              DPRQuestionEncoder, DPRQuestionEncoderTokenizerFast)
    root = Path(path)
    bert = _bert_config()
    config = DPRConfig(vocab_size=bert.vocab_size, hidden_size=bert.hidden_size,
                       num_hidden_layers=bert.num_hidden_layers,
                       num_attention_heads=bert.num_attention_heads,
                       intermediate_size=bert.intermediate_size,
                       max_position_embeddings=bert.max_position_embeddings,
                       projection_dim=projection_dim)
    folders = []
    for offset, (name, model_cls, tok_cls) in enumerate((
            ("question", DPRQuestionEncoder, DPRQuestionEncoderTokenizerFast),
            ("context", DPRContextEncoder, DPRContextEncoderTokenizerFast))):
        folder = root / name
        torch.manual_seed(seed + offset)  # two towers, two different sets of weights
        model_cls(config).eval().save_pretrained(folder)
        _tokenizer(tok_cls, config.max_position_embeddings).save_pretrained(folder)
        folders.append(folder)
    return folders[0], folders[1]


def tiny_sentence_transformer(path, seed: int = 0, max_seq_length: int = 128) -> Path:
    """A sentence-transformers folder (Transformer + mean Pooling) over a tiny BERT."""
    from sentence_transformers import SentenceTransformer, models
    folder = Path(path)
    encoder = tiny_bert_encoder(folder.parent / f"{folder.name}-bert", seed=seed)
    transformer = models.Transformer(str(encoder), max_seq_length=max_seq_length)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(folder))
    return folder
